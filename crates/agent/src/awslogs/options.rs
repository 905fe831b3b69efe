//! A container's awslogs options, checked and read as Docker's driver reads them (its
//! messages, its size syntax, its strftime-to-regex for `awslogs-datetime-format`).

use std::collections::BTreeMap;

use regex::Regex;

pub const DRIVER: &str = "awslogs";
const DEFAULT_MAX_BUFFER_SIZE: usize = 1 << 20;
/// What Docker's json-file driver keeps of an awslogs container: enough for the shipper to
/// fall far behind (control plane away) without filling the host's disk.
pub const JSON_FILE_MAX_SIZE: &str = "100m";
pub const JSON_FILE_MAX_FILES: &str = "5";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Nothing is dropped: when the shipper's buffer is full it stops reading Docker's log
    /// (which keeps the rest on disk). Unlike ECS, the container itself never blocks.
    Blocking,
    /// The buffer holds at most `max-buffer-size`; when full, the oldest events go.
    NonBlocking,
}

/// Why a container's awslogs options are refused, in Docker's words (the task stops with
/// `CannotCreateContainerError: Error response from daemon: {this}`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OptionsError {
    #[error("unknown log opt '{0}' for {driver} log driver", driver = DRIVER)]
    Unknown(String),
    #[error("must specify a value for log opt 'awslogs-group'")]
    NoGroup,
    #[error("strconv.ParseBool: parsing \"{0}\": invalid syntax")]
    Bool(String),
    #[error("logger: logging mode not supported: {0}")]
    Mode(String),
    #[error("invalid size: '{0}'")]
    Size(String),
    #[error(
        "you cannot configure log opt 'awslogs-datetime-format' and \
         'awslogs-multiline-pattern' at the same time"
    )]
    BothMultiline,
    #[error("awslogs could not parse multiline pattern key \"{pattern}\": {source}")]
    Pattern {
        pattern: String,
        source: regex::Error,
    },
}

/// A container's awslogs options, checked as Docker checks them.
#[derive(Debug, Clone)]
pub struct AwslogsOptions {
    pub group: String,
    pub region: String,
    pub stream_prefix: Option<String>,
    /// Docker's `awslogs-stream`: the stream's name as given.
    pub stream: Option<String>,
    pub create_group: bool,
    pub mode: DeliveryMode,
    pub max_buffer_size: usize,
    /// Starts a new event (from `awslogs-multiline-pattern` or `awslogs-datetime-format`).
    pub multiline: Option<Regex>,
}

/// Options Docker's awslogs driver (and ECS) accept. Those not listed in the module
/// documentation are accepted and ignored.
const KNOWN_OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-stream",
    "awslogs-create-group",
    "awslogs-create-stream",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "awslogs-endpoint",
    "awslogs-credentials-endpoint",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "awslogs-format",
    "mode",
    "max-buffer-size",
    "tag",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
];

impl AwslogsOptions {
    /// Reads the options; the error is Docker's message. Without `awslogs-region` the
    /// agent's own region is used (Docker would ask the EC2 metadata service).
    pub fn parse(
        options: &BTreeMap<String, String>,
        default_region: &str,
    ) -> Result<AwslogsOptions, OptionsError> {
        if let Some(unknown) = options
            .keys()
            .find(|k| !KNOWN_OPTIONS.contains(&k.as_str()))
        {
            return Err(OptionsError::Unknown(unknown.clone()));
        }
        let get = |key: &str| {
            options
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let group = get("awslogs-group")
            .ok_or(OptionsError::NoGroup)?
            .to_owned();
        let create_group = match get("awslogs-create-group") {
            None => false,
            Some(value) => parse_bool(value).ok_or_else(|| OptionsError::Bool(value.to_owned()))?,
        };
        let mode = match get("mode") {
            None | Some("blocking") => DeliveryMode::Blocking,
            Some("non-blocking") => DeliveryMode::NonBlocking,
            Some(other) => return Err(OptionsError::Mode(other.to_owned())),
        };
        let max_buffer_size = match get("max-buffer-size") {
            None => DEFAULT_MAX_BUFFER_SIZE,
            Some(size) => parse_size(size)
                .filter(|s| *s > 0)
                .ok_or_else(|| OptionsError::Size(size.to_owned()))?,
        };
        let datetime = get("awslogs-datetime-format");
        let pattern = get("awslogs-multiline-pattern");
        let multiline = match (datetime, pattern) {
            (Some(_), Some(_)) => return Err(OptionsError::BothMultiline),
            (Some(format), None) => Some(datetime_format_regex(format)),
            (None, Some(pattern)) => Some(pattern.to_owned()),
            (None, None) => None,
        };
        let multiline = multiline
            .map(|pattern| {
                Regex::new(&pattern).map_err(|source| OptionsError::Pattern { pattern, source })
            })
            .transpose()?;
        Ok(AwslogsOptions {
            group,
            region: get("awslogs-region").unwrap_or(default_region).to_owned(),
            stream_prefix: get("awslogs-stream-prefix").map(str::to_owned),
            stream: get("awslogs-stream").map(str::to_owned),
            create_group,
            mode,
            max_buffer_size,
            multiline,
        })
    }

    /// The stream's name as ECS makes it: `prefix/container-name/task-id` with a prefix,
    /// else Docker's default, the container's id.
    pub fn stream_name(&self, container_name: &str, task_arn: &str, container_id: &str) -> String {
        match (&self.stream_prefix, &self.stream) {
            (Some(prefix), _) => {
                let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
                format!("{prefix}/{container_name}/{task_id}")
            }
            (None, Some(stream)) => stream.clone(),
            (None, None) => container_id.to_owned(),
        }
    }
}

/// Go's `strconv.ParseBool`, which Docker uses.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's size syntax (`units.RAMInBytes`): a number, an optional space, an optional
/// binary unit `k`/`m`/`g`/`t`/`p` (any case) and an optional `i`/`b`: `4m`, `25MiB`, `1024`.
pub fn parse_size(text: &str) -> Option<usize> {
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let bytes = number * 1024f64.powi(power);
    (bytes.is_finite() && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// `awslogs-datetime-format` as Docker turns it into a pattern: each `%X` becomes a regex
/// (an unknown one nothing), everything else stays as written (a `.` matches any character).
pub fn datetime_format_regex(format: &str) -> String {
    let mut pattern = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            pattern.push(c);
            continue;
        }
        let Some(directive) = chars.next() else {
            pattern.push('%');
            break;
        };
        pattern.push_str(match directive {
            'a' => r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            'A' => r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            'w' => r"[0-6]",
            'd' => r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
            'b' => r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            'B' => {
                r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
            }
            'm' => r"(?:0[1-9]|1[0-2])",
            'Y' => r"\d{4}",
            'y' => r"\d{2}",
            'H' => r"(?:[0,1][0-9]|2[0-3])",
            'I' => r"(?:0[0-9]|1[0-2])",
            'p' => r"[A,P]M",
            'M' => r"[0-5][0-9]",
            'S' => r"[0-5][0-9]",
            'f' => r"\d{6}",
            'z' => r"[+-]\d{4}",
            'Z' => r"[A-Z]{1,4}T",
            'j' => r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            'L' => r"\.\d{3}",
            _ => "",
        });
    }
    pattern
}
