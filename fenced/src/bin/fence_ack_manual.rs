//! `fence_ack_manual [-y] [-n] NODE`: tell fenced that NODE is off, completing its pending
//! fencing as an override (see docs/fence-agents.md).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = fenced::agents::manual::ack_main(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
