//! What a simulated container's command makes it do (the rules are in the parent module's
//! documentation): read once at create, acted out by the runtime.

use std::time::Duration;

/// What the container's command makes it do (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Behaviour {
    /// `None`: runs until stopped.
    pub(super) runs_for: Option<Duration>,
    pub(super) exit_code: i64,
    pub(super) ignores_sigterm: bool,
}

/// Reads what a command makes the simulated container do.
pub(super) fn parse_behaviour(argv: &[String]) -> Behaviour {
    let script = argv.join(" ");
    let mut behaviour = Behaviour {
        runs_for: None,
        exit_code: 0,
        ignores_sigterm: false,
    };
    let mut slept = Duration::ZERO;
    let mut has_sleep = false;
    let statements = script
        .split(['\n', ';'])
        .flat_map(|s| s.split("&&"))
        .flat_map(|s| s.split("||"));
    for statement in statements {
        let tokens: Vec<&str> = statement
            .split_whitespace()
            .map(|t| t.trim_matches(|c| c == '\'' || c == '"'))
            .collect();
        if tokens.contains(&"trap") && tokens.contains(&"TERM") {
            behaviour.ignores_sigterm = true;
        }
        for pair in tokens.windows(2) {
            match pair {
                ["sleep", seconds] => {
                    if let Ok(seconds) = seconds.parse::<f64>()
                        && seconds.is_finite()
                        && seconds >= 0.0
                    {
                        slept += Duration::from_secs_f64(seconds);
                        has_sleep = true;
                    }
                }
                ["exit", code] => {
                    if let Ok(code) = code.parse::<i64>() {
                        behaviour.exit_code = code;
                        behaviour.runs_for = Some(slept);
                        return behaviour;
                    }
                }
                _ => {}
            }
        }
    }
    if has_sleep {
        behaviour.runs_for = Some(slept);
    }
    behaviour
}

/// Whether a simulated health check command passes.
pub(super) fn health_check_passes(command: &[String]) -> bool {
    let failing = parse_behaviour(command).exit_code != 0;
    let says_false = command
        .iter()
        .flat_map(|part| part.split_whitespace())
        .any(|token| token == "false");
    !(failing || says_false)
}
