#!/usr/bin/env bash
# Checks the deployment files offline: Prometheus rules (promtool check + unit tests),
# the generated PrometheusRule is current, Kubernetes core resources against their
# schemas (kubernetes-validate), operator resources against the operator's CRD
# schemas, and the Grafana dashboard is valid JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.nova/tools
promtool check rules deploy/prometheus/rules.yml
(cd deploy/prometheus && promtool test rules rules_test.yml)
"$tools/venv/bin/python" scripts/gen-prometheusrule.py --check
"$tools/venv/bin/kubernetes-validate" --quiet --no-warn deploy/k8s/monitoring.yaml
node scripts/validate-crds.mjs deploy/k8s/*.yaml
python3 -m json.tool grafana/nova-streaming.json >/dev/null
echo "validate-deploy: ok"
