//! `fence_manual`: ask the administrator to fence a node and wait for `fence_ack_manual`
//! (see docs/fence-agents.md).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = fenced::agents::manual::manual_main(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
