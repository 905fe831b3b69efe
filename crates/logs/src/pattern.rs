//! PLACEHOLDER until the filter-pattern engine lands: space-separated terms, all required.

#[derive(Debug, Clone)]
pub struct FilterPattern {
    terms: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("Invalid filter pattern")]
pub struct PatternError;

impl FilterPattern {
    pub fn parse(text: &str) -> Result<FilterPattern, PatternError> {
        Ok(FilterPattern {
            terms: text
                .split_whitespace()
                .map(|t| t.trim_matches('"').to_string())
                .collect(),
        })
    }
    pub fn matches(&self, message: &str) -> bool {
        self.terms.iter().all(|t| message.contains(t.as_str()))
    }
    pub fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        self.terms.first().map(|t| vec![t.as_bytes().to_vec()])
    }
    pub fn matches_everything(&self) -> bool {
        self.terms.is_empty()
    }
}
