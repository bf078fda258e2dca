// Validates our Prometheus-operator resources (ServiceMonitor, PrometheusRule) in
// deploy/k8s against the operator's CRD schemas, offline, with the
// @kubernetes-models/prometheus-operator package (installed in .nova/tools).
//   node scripts/validate-crds.mjs deploy/k8s/*.yaml
import { readFileSync } from 'node:fs';

const tools = new URL('../.nova/tools/node_modules/', import.meta.url);
const load = (spec) => import(new URL(spec, tools).href);
const { parseAllDocuments } = await load('yaml/dist/index.js');
const models = await load('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js');

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const obj = doc.toJS();
    if (!obj || obj.apiVersion !== 'monitoring.coreos.com/v1') continue;
    const Model = models[obj.kind];
    if (!Model) {
      console.error(`${file}: no schema for ${obj.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(obj).validate();
      checked++;
      console.log(`${file}: ${obj.kind}/${obj.metadata.name} valid`);
    } catch (err) {
      failures++;
      console.error(`${file}: ${obj.kind}/${obj.metadata && obj.metadata.name} invalid: ${err.message}`);
    }
  }
}
if (checked === 0) failures++;
process.exit(failures ? 1 : 0);
