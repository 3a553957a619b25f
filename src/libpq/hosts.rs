//! Which Postgres hosts are Lakebase hosts: names in the Databricks DNS zones, plus the globs in
//! `LAKEBASE_HOSTS` (comma-separated, `*` wildcard, case-insensitive), e.g. `localhost,127.0.0.1`
//! for tests or `*.internal.example.com` for a private DNS alias.

/// DNS zones whose hosts are Lakebase hosts (Lakebase instance and endpoint hosts live under the
/// workspace zones: `instance-<uid>.database.cloud.databricks.com`,
/// `ep-<id>.database.<region>.cloud.databricks.com`, and the Azure/GovCloud/China equivalents).
pub const ZONES: &[&str] = &[".databricks.com", ".databricks.us", ".azuredatabricks.net", ".databricks.azure.us", ".databricks.azure.cn"];

pub fn is_lakebase_host(host: &str, extra_globs: Option<&str>) -> bool {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() || h.starts_with('/') || h.starts_with('@') {
        return false; // Unix-domain socket directory or abstract socket
    }
    if ZONES.iter().any(|z| h.ends_with(z) && h.len() > z.len()) {
        return true;
    }
    extra_globs.unwrap_or("").split(',').map(str::trim).filter(|g| !g.is_empty()).any(|g| glob_match(&g.to_ascii_lowercase(), &h))
}

/// `*` matches any run of characters (including none); everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, usize::MAX, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = pi;
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if star != usize::MAX {
            pi = star + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert!(is_lakebase_host("instance-0b1c.database.cloud.databricks.com", None));
        assert!(is_lakebase_host("ep-cool-name-123.database.us-west-2.cloud.databricks.com", None));
        assert!(is_lakebase_host("INSTANCE-x.database.azuredatabricks.net.", None));
        assert!(is_lakebase_host("x.database.databricks.azure.cn", None));
        assert!(is_lakebase_host("x.database.cloud.databricks.us", None));
        assert!(!is_lakebase_host("databricks.com", None));
        assert!(!is_lakebase_host("evil-databricks.com", None));
        assert!(!is_lakebase_host("db.example.com", None));
        assert!(!is_lakebase_host("localhost", None));
        assert!(!is_lakebase_host("/var/run/postgresql", Some("*")));
        assert!(!is_lakebase_host("", Some("*")));
    }

    #[test]
    fn extra_globs() {
        let g = Some(" localhost , 127.0.0.1,*.db.internal ");
        assert!(is_lakebase_host("localhost", g));
        assert!(is_lakebase_host("127.0.0.1", g));
        assert!(is_lakebase_host("pg1.db.internal", g));
        assert!(!is_lakebase_host("db.internal", g));
        assert!(!is_lakebase_host("127.0.0.2", g));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b", "axxbyyc"));
        assert!(glob_match("*", ""));
    }
}
