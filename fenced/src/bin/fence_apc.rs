//! `fence_apc`: fence through an APC power switch (see docs/fence-agents.md).

use fenced::agents::{apc::FenceApc, conn, power};

fn main() {
    if conn::askpass_main() {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = power::main(
        &FenceApc,
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
