//! "Did you mean ...?": the known name closest to a misspelt one, by edit distance with case
//! ignored (`baseurl` is `baseUrl`), when it is close enough to be a plausible typo.

/// The closest of `known` to `name`, if within a typo's distance of it.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(2);
    known
        .iter()
        .map(|candidate| (distance(&wanted, &candidate.to_lowercase()), *candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over chars, one row at a time.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        // `diagonal` is the previous row's cell to the left of `above`; `left` the new row's.
        let mut diagonal = i;
        let mut left = i + 1;
        let mut next = Vec::with_capacity(row.len());
        next.push(left);
        for (cb, above) in b.iter().zip(row.iter().skip(1)) {
            let cell = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(left + 1);
            diagonal = *above;
            left = cell;
            next.push(cell);
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_plausible_typos_only() {
        let fields = ["baseUrl", "apiKey", "model", "maxTokens"];
        assert_eq!(closest("baseurl", &fields), Some("baseUrl"));
        assert_eq!(closest("baseUr", &fields), Some("baseUrl"));
        assert_eq!(closest("apikey", &fields), Some("apiKey"));
        assert_eq!(closest("modle", &fields), Some("model"));
        assert_eq!(closest("temperature", &fields), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
