//! `nova-stack`: brings the local Nova Streaming stack up and down (`make dev`,
//! `make up`, `make down`) and runs commands against private test engines
//! (`make test`).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use nova_stack::{
    demo, env_file,
    process::Attach,
    stack::{self, Layout, Ports, TestEngines},
};

/// Command line of `nova-stack`.
#[derive(Parser)]
#[command(name = "nova-stack", version, about = "The local Nova Streaming stack")]
struct Cli {
    /// Project folder; the stack lives in its `.nova/`.
    #[arg(long, default_value = ".", global = true)]
    root: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Starts everything in the foreground; Ctrl-C stops everything.
    Dev {
        /// Transcode every broadcast into renditions (also NOVA_STACK_ABR=1).
        #[arg(long, env = "NOVA_STACK_ABR", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
        abr: bool,
    },
    /// Starts everything in the background.
    Up {
        /// Transcode every broadcast into renditions (also NOVA_STACK_ABR=1).
        #[arg(long, env = "NOVA_STACK_ABR", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
        abr: bool,
    },
    /// Stops everything `up` or `dev` started.
    Down,
    /// Starts private PostgreSQL and Redis, runs a command with their addresses in
    /// NOVA_TEST_DATABASE_URL / NOVA_TEST_REDIS_URL, then stops them.
    TestEnv {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("nova-stack: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Up { abr } => {
            let layout = Layout::new(&cli.root)?;
            let running = stack::up(&layout, Ports::from_env()?, Attach::Detached, abr)?;
            announce(&layout, &running.vars).await;
            say("Stop it with `make down`. Logs: .nova/logs/");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dev { abr } => {
            let layout = Layout::new(&cli.root)?;
            let mut running = stack::up(&layout, Ports::from_env()?, Attach::Foreground, abr)?;
            announce(&layout, &running.vars).await;
            say("Press Ctrl-C to stop everything.");
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = tick.tick() => {
                        if let Some((name, status)) = running.children.iter_mut()
                            .find_map(|(name, c)| c.try_wait().ok().flatten().map(|s| (*name, s))) {
                            say(&format!("{name} exited ({status}); stopping the stack"));
                            break;
                        }
                    }
                }
            }
            stack::down(&layout)?;
            say("stack stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Down => {
            stack::down(&Layout::new(&cli.root)?)?;
            say("stack stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::TestEnv { command } => {
            let engines = TestEngines::start()?;
            let (program, args) = command.split_first().unwrap_or_else(|| unreachable!());
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .envs(engines.env())
                .spawn()?;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status?,
                    _ = tokio::signal::ctrl_c() => {}
                }
            };
            drop(engines);
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
    }
}

async fn announce(layout: &Layout, vars: &[(&'static str, String)]) {
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    say(&format!(
        "Nova Streaming is up. Addresses (also in {}):\n\n{}",
        layout.env_file().display(),
        env_file::render(vars)
    ));
    match demo::ensure(&var("NOVA_GRPC_ADDR"), &var("NOVA_SERVICE_TOKEN")).await {
        Ok(demo) => say(&demo::instructions(
            &demo,
            &var("NOVA_RTMP_URL"),
            &var("NOVA_HLS_URL"),
        )),
        Err(err) => say(&format!("(could not create the demo stream: {err})")),
    }
    say(
        "Call the API:\n  source .nova/stack.env; export PATH=$PWD/.nova/tools/venv/bin:$PATH\n  \
         grpcurl -plaintext $NOVA_GRPC_ADDR list\n  \
         grpcurl -plaintext -H \"authorization: Bearer $NOVA_SERVICE_TOKEN\" -H 'x-nova-principal: alice' \\\n    \
         -d '{\"stream\": {\"title\": \"My first stream\"}}' $NOVA_GRPC_ADDR nova.streaming.v1.StreamService/CreateStream\n",
    );
}

#[allow(clippy::print_stdout)]
fn say(message: &str) {
    println!("{message}");
}
