//! The authorizer's route table (`RESOURCE_AUTHORIZER_ROUTES`): which method and path need which
//! scope. Entries are `METHOD /path=scope`, comma-separated; `{name}` stands for one path segment,
//! and an empty scope (`GET /v1/me=`) lets any valid token through. A route that is not listed is
//! refused. The table is checked in full at start, so a typo stops the function instead of
//! silently refusing (or allowing) a route.

use std::collections::HashSet;

use shared_claims::{Scope, ScopeSet};

/// The methods a route may name (API Gateway's, without `ANY`: each method is listed on its own).
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// One segment of a route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param,
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: String,
    segments: Vec<Segment>,
    /// `None`: any valid token.
    scope: Option<Scope>,
    /// The entry as written, for error messages.
    entry: String,
}

/// What the table says about one call by a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The route is listed and the token has its scope.
    Allowed,
    /// The route is listed, and needs a scope the token lacks.
    MissingScope,
    /// The route is not listed: refused, whatever the token.
    Unlisted,
}

/// A route table that cannot be used; the message names the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error(
        "RESOURCE_AUTHORIZER_ROUTES is empty: list the routes this authorizer may allow, as \
         comma-separated METHOD /path=scope entries (an empty scope after '=' means any valid token)"
    )]
    Empty,
    #[error("RESOURCE_AUTHORIZER_ROUTES entry {entry:?}: {why}")]
    Malformed { entry: String, why: String },
    #[error("RESOURCE_AUTHORIZER_ROUTES entries {first:?} and {second:?} name the same route")]
    Duplicate { first: String, second: String },
    #[error(
        "RESOURCE_AUTHORIZER_ROUTES entry {broad:?} would also allow {narrow:?}, which needs another \
         scope: a cached REST policy allows a route as a method ARN in which each {{param}} is `*`, \
         and `*` matches any characters, `/` included; give both the same scope or change a path"
    )]
    Overlap { broad: String, narrow: String },
}

impl Route {
    /// Parses one `METHOD /path=scope` entry.
    fn parse(entry: &str) -> Result<Route, RouteError> {
        let malformed = |why: &str| RouteError::Malformed {
            entry: entry.to_owned(),
            why: why.to_owned(),
        };
        let Some((route, scope)) = entry.split_once('=') else {
            return Err(malformed(
                "expected METHOD /path=scope (an empty scope after '=' means any valid token)",
            ));
        };
        let mut words = route.split_whitespace();
        let (Some(method), Some(path), None) = (words.next(), words.next(), words.next()) else {
            return Err(malformed(
                "expected a method and a path before '=', such as GET /v1/orders",
            ));
        };
        let method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(malformed(&format!(
                "unknown method; one of {}",
                METHODS.join(", ")
            )));
        }
        let segments = parse_path(path).map_err(|why| malformed(&why))?;
        let scope = scope.trim();
        let scope = if scope.is_empty() {
            None
        } else if scope.contains(char::is_whitespace) {
            return Err(malformed("one scope per route"));
        } else {
            Some(Scope::parse(scope).map_err(|err| malformed(&format!("scope: {err}")))?)
        };
        Ok(Route {
            method,
            segments,
            scope,
            entry: entry.to_owned(),
        })
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// The scope the route needs; `None`: any valid token.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// Whether a token with `scopes` may call the route.
    pub fn permits(&self, scopes: &ScopeSet) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| scopes.contains(s.as_str()))
    }

    /// The path as API Gateway writes it in a method ARN, without the leading `/`, each
    /// parameter as `*`: `v1/orders/*`.
    pub fn arn_path(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.as_str(),
                Segment::Param => "*",
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether the route is `method` and `path` (each parameter matching one non-empty segment).
    fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        if rest.is_empty() {
            return self.segments.is_empty();
        }
        let parts: Vec<&str> = rest.split('/').collect();
        parts.len() == self.segments.len()
            && self.segments.iter().zip(&parts).all(|(s, p)| match s {
                Segment::Literal(text) => text == p,
                Segment::Param => !p.is_empty(),
            })
    }

    /// Whether `self` wins over `other` where both match: the first segment where one is a
    /// literal and the other a parameter decides, as API Gateway and axum decide.
    fn more_specific_than(&self, other: &Route) -> bool {
        self.segments
            .iter()
            .zip(&other.segments)
            .find_map(|pair| match pair {
                (Segment::Literal(_), Segment::Param) => Some(true),
                (Segment::Param, Segment::Literal(_)) => Some(false),
                _ => None,
            })
            .unwrap_or(false)
    }

    /// Whether both match some path with the same number of segments.
    fn shares_paths_with(&self, other: &Route) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    _ => true,
                })
    }

    /// Whether an Allow of this route's method ARN (each parameter `*`) would also allow a call
    /// that the table hands to `other`.
    fn arn_covers(&self, other: &Route) -> bool {
        if self.method != other.method || !self.segments.contains(&Segment::Param) {
            return false;
        }
        if self.segments.len() == other.segments.len() {
            // Each `*` then spans exactly one segment: the calls both match go to the more
            // specific route.
            return self.shares_paths_with(other) && other.more_specific_than(self);
        }
        // A `*` spanning several segments reaches longer paths only.
        other.segments.len() > self.segments.len()
            && glob_meets(&tokens(self, Token::Any), &tokens(other, Token::Segment))
    }
}

/// Parses `/a/{b}/c` into segments; `/` alone is the root.
fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("the path must start with '/'".into());
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|segment| {
            if segment.is_empty() {
                return Err("the path has an empty segment (a '//' or a trailing '/')".into());
            }
            if let Some(name) = segment.strip_prefix('{') {
                let Some(name) = name.strip_suffix('}') else {
                    return Err(format!("segment {segment:?}: a parameter is {{name}}"));
                };
                if name.ends_with('+') {
                    return Err(format!(
                        "segment {segment:?}: greedy parameters are not supported; list each route"
                    ));
                }
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!(
                        "segment {segment:?}: a parameter name is letters, digits and '_'"
                    ));
                }
                return Ok(Segment::Param);
            }
            let allowed = |b: u8| b.is_ascii_graphic() && !b"{}*?=,".contains(&b);
            if !segment.bytes().all(allowed) {
                return Err(format!(
                    "segment {segment:?}: a literal segment is printable ASCII without {{ }} * ? = ,"
                ));
            }
            Ok(Segment::Literal(segment.to_owned()))
        })
        .collect()
}

/// One element of a path pattern spelled out byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    Byte(u8),
    /// IAM's `*` in a resource: any run of characters, `/` included, possibly empty.
    Any,
    /// A route parameter: one or more characters other than `/`.
    Segment,
}

/// `route`'s path without its leading `/`, each parameter as `param`.
fn tokens(route: &Route, param: Token) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, segment) in route.segments.iter().enumerate() {
        if i > 0 {
            out.push(Token::Byte(b'/'));
        }
        match segment {
            Segment::Literal(text) => out.extend(text.bytes().map(Token::Byte)),
            Segment::Param => out.push(param),
        }
    }
    out
}

/// Whether some path matches both the glob `a` (bytes and [`Token::Any`]) and the pattern `b`
/// (bytes and [`Token::Segment`]): a search over the pairs of positions, where `inside` means
/// `b` is within a parameter that has at least one character already.
fn glob_meets(a: &[Token], b: &[Token]) -> bool {
    let mut seen = HashSet::new();
    let mut todo = vec![(0usize, 0usize, false)];
    while let Some(state @ (i, j, inside)) = todo.pop() {
        if !seen.insert(state) {
            continue;
        }
        if i == a.len() && j == b.len() && !inside {
            return true;
        }
        if inside {
            todo.push((i, j + 1, false)); // the parameter ends here
        }
        match a.get(i) {
            Some(Token::Any) => {
                todo.push((i + 1, j, inside)); // `*` ends here
                if j < b.len() {
                    todo.push((i, j + 1, false)); // `*` takes b's next byte or parameter
                }
            }
            // Within a parameter: any byte but '/' continues it.
            Some(Token::Byte(b'/')) if inside => {}
            Some(Token::Byte(_)) if inside => todo.push((i + 1, j, true)),
            Some(Token::Byte(c)) => match b.get(j) {
                Some(Token::Byte(d)) if d == c => todo.push((i + 1, j + 1, false)),
                Some(Token::Segment) if *c != b'/' => todo.push((i + 1, j, true)),
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// The parsed `RESOURCE_AUTHORIZER_ROUTES`.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Parses the entries (blank ones skipped) and checks the table as a whole: no route twice,
    /// and no route whose cached REST policy would reach a route needing another scope.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<RouteTable, RouteError> {
        let routes = entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(Route::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if routes.is_empty() {
            return Err(RouteError::Empty);
        }
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                if a.method == b.method && a.segments == b.segments {
                    return Err(RouteError::Duplicate {
                        first: a.entry.clone(),
                        second: b.entry.clone(),
                    });
                }
            }
        }
        for a in &routes {
            for b in &routes {
                let b_needs_more = b.scope.is_some() && b.scope != a.scope;
                if b_needs_more && a.arn_covers(b) {
                    return Err(RouteError::Overlap {
                        broad: a.entry.clone(),
                        narrow: b.entry.clone(),
                    });
                }
            }
        }
        Ok(RouteTable { routes })
    }

    /// The listed route a call of `method` on `path` (the stage left out) goes to: the most
    /// specific of those that match.
    pub fn find(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.matches(method, path))
            .reduce(|best, r| if r.more_specific_than(best) { r } else { best })
    }

    /// What the table says about a call of `method` on `path` by a token with `scopes`.
    pub fn access(&self, method: &str, path: &str, scopes: &ScopeSet) -> Access {
        match self.find(method, path) {
            None => Access::Unlisted,
            Some(route) if route.permits(scopes) => Access::Allowed,
            Some(_) => Access::MissingScope,
        }
    }

    /// Every route a token with `scopes` may call, in the table's order.
    pub fn permitted<'a>(&'a self, scopes: &'a ScopeSet) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes.iter().filter(|r| r.permits(scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "GET /v1/me=,GET /v1/orders=orders:read,GET /v1/orders/{id}=orders:read,\
                         GET /v1/invoices=invoices:read,GET /v1/invoices/{id}=invoices:read,\
                         POST /v1/orders=orders:write";

    fn table(text: &str) -> Result<RouteTable, RouteError> {
        RouteTable::parse(&text.split(',').collect::<Vec<_>>())
    }

    fn scopes(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn entries_parse_into_method_path_and_scope() {
        let t = table(TABLE).unwrap();
        let me = t.find("GET", "/v1/me").unwrap();
        assert_eq!(me.method(), "GET");
        assert_eq!(me.scope(), None);
        assert_eq!(me.arn_path(), "v1/me");
        let order = t.find("GET", "/v1/orders/ord_1").unwrap();
        assert_eq!(order.scope().unwrap().as_str(), "orders:read");
        assert_eq!(order.arn_path(), "v1/orders/*");
        // Case of the method, spaces around an entry and blank entries do not matter.
        let t = table(" get  /v1/me = , ,post /v1/orders=orders:write ,").unwrap();
        assert!(t.find("GET", "/v1/me").is_some());
        assert!(t.find("POST", "/v1/orders").is_some());
        assert_eq!(
            table("GET /=")
                .unwrap()
                .find("GET", "/")
                .unwrap()
                .arn_path(),
            ""
        );
    }

    #[test]
    fn a_malformed_entry_is_refused_by_name() {
        for (entry, why) in [
            ("GET /v1/me", "expected METHOD /path=scope"),
            ("/v1/me=", "expected a method and a path"),
            ("GET=", "expected a method and a path"),
            ("GET /v1/me extra=", "expected a method and a path"),
            ("FETCH /v1/me=", "unknown method"),
            ("ANY /v1/me=", "unknown method"),
            ("GET v1/me=", "must start with '/'"),
            ("GET /v1//me=", "empty segment"),
            ("GET /v1/me/=", "empty segment"),
            ("GET /v1/{id=", "a parameter is {name}"),
            ("GET /v1/{}=", "a parameter name"),
            ("GET /v1/{a-b}=", "a parameter name"),
            ("GET /v1/{proxy+}=", "greedy parameters"),
            ("GET /v1/*=", "literal segment"),
            ("GET /v1/a}b=", "literal segment"),
            (
                "GET /v1/orders=orders:read orders:write",
                "one scope per route",
            ),
            ("GET /v1/orders=orders\"read", "scope:"),
        ] {
            let err = table(&format!("GET /v1/ok=,{entry}")).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(&err, RouteError::Malformed { entry: e, .. } if e == entry.trim()),
                "{entry}: {message}"
            );
            assert!(message.contains(why), "{entry}: {message}");
            assert!(
                message.contains(&format!("{:?}", entry.trim())),
                "{message}"
            );
        }
        assert_eq!(table("").unwrap_err(), RouteError::Empty);
        assert_eq!(table(" , ").unwrap_err(), RouteError::Empty);
        assert!(matches!(
            table("GET /v1/orders/{id}=a,get /v1/orders/{oid}=b"),
            Err(RouteError::Duplicate { .. })
        ));
    }

    #[test]
    fn parameters_match_exactly_one_segment_and_literals_win() {
        let t = table("GET /v1/orders/{id}=orders:read,GET /v1/orders/{id}/lines=orders:read,GET /v1/orders/latest=orders:read,GET /=").unwrap();
        let find = |m: &str, p: &str| t.find(m, p).map(|r| r.entry.as_str());
        assert_eq!(
            find("GET", "/v1/orders/1"),
            Some("GET /v1/orders/{id}=orders:read")
        );
        assert_eq!(
            find("get", "/v1/orders/1"),
            Some("GET /v1/orders/{id}=orders:read")
        );
        assert_eq!(
            find("GET", "/v1/orders/latest"),
            Some("GET /v1/orders/latest=orders:read")
        );
        assert_eq!(
            find("GET", "/v1/orders/1/lines"),
            Some("GET /v1/orders/{id}/lines=orders:read")
        );
        assert_eq!(find("GET", "/"), Some("GET /="));
        for (method, path) in [
            ("GET", "/v1/orders"),
            ("GET", "/v1/orders/"),
            ("GET", "/v1/orders//lines"),
            ("GET", "/v1/orders/1/2"),
            ("GET", "v1/orders/1"),
            ("GET", ""),
            ("POST", "/v1/orders/1"),
            ("GET", "/V1/orders/1"),
        ] {
            assert_eq!(find(method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn access_is_decided_by_the_routes_scope_and_unlisted_routes_are_refused() {
        let t = table(TABLE).unwrap();
        let reader = scopes("orders:read catalog:read");
        assert_eq!(t.access("GET", "/v1/me", &reader), Access::Allowed);
        assert_eq!(t.access("GET", "/v1/orders/1", &reader), Access::Allowed);
        assert_eq!(
            t.access("GET", "/v1/invoices/1", &reader),
            Access::MissingScope
        );
        assert_eq!(
            t.access("POST", "/v1/orders", &reader),
            Access::MissingScope
        );
        assert_eq!(
            t.access("DELETE", "/v1/orders/1", &reader),
            Access::Unlisted
        );
        assert_eq!(t.access("GET", "/v1/products", &reader), Access::Unlisted);
        let permitted: Vec<String> = t
            .permitted(&reader)
            .map(|r| format!("{} {}", r.method(), r.arn_path()))
            .collect();
        assert_eq!(permitted, ["GET v1/me", "GET v1/orders", "GET v1/orders/*"]);
    }

    #[test]
    fn a_route_whose_arn_would_reach_a_route_of_another_scope_is_refused() {
        for (text, broad) in [
            // `*` spans several segments in an ARN.
            (
                "GET /v1/orders/{id}=orders:read,GET /v1/orders/{id}/invoices=invoices:read",
                "GET /v1/orders/{id}=orders:read",
            ),
            (
                "GET /v1/{kind}/{id}=,GET /v1/orders/{id}/lines/{n}=orders:read",
                "GET /v1/{kind}/{id}=",
            ),
            // `*` matches a literal that wins in the table.
            (
                "GET /v1/orders/{id}=orders:read,GET /v1/orders/summary=reports:read",
                "GET /v1/orders/{id}=orders:read",
            ),
            // The broader route's `*/*` covers the calls the table gives the literal route.
            (
                "GET /v1/orders/{id}=orders:read,GET /v1/{kind}/{id}=admin",
                "GET /v1/{kind}/{id}=admin",
            ),
            // A literal where the longer route has a parameter.
            (
                "GET /v1/{a}/items/{b}=x,GET /v1/{c}/{d}/{e}/{f}=y",
                "GET /v1/{a}/items/{b}=x",
            ),
        ] {
            match table(text) {
                Err(RouteError::Overlap { broad: b, .. }) => assert_eq!(b, broad, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            TABLE,
            // The same scope: nothing more is allowed.
            "GET /v1/orders/{id}=orders:read,GET /v1/orders/{id}/lines=orders:read",
            // The literal is the more specific route and its ARN has no `*`.
            "GET /v1/orders/latest=,GET /v1/orders/{id}=orders:read",
            // Another method.
            "GET /v1/orders/{id}=orders:read,POST /v1/orders/{id}/cancel=orders:write",
            // A literal in the glob that the longer route cannot have.
            "GET /v1/{a}/items/{b}=x,GET /v2/{c}/{d}/{e}/{f}=y",
        ] {
            assert!(table(text).is_ok(), "{text}: {:?}", table(text));
        }
    }

    #[test]
    fn the_glob_search_treats_star_and_parameters_as_iam_and_the_table_do() {
        let glob = |t: &str| -> Vec<Token> {
            t.bytes()
                .map(|b| {
                    if b == b'*' {
                        Token::Any
                    } else {
                        Token::Byte(b)
                    }
                })
                .collect()
        };
        let pattern = |t: &str| -> Vec<Token> {
            t.bytes()
                .map(|b| {
                    if b == b'#' {
                        Token::Segment
                    } else {
                        Token::Byte(b)
                    }
                })
                .collect()
        };
        assert!(glob_meets(&glob("a/*"), &pattern("a/#/b")));
        assert!(glob_meets(&glob("a/*"), &pattern("a/#")));
        assert!(glob_meets(&glob("a/*x"), &pattern("a/#")));
        assert!(glob_meets(&glob("*"), &pattern("")));
        assert!(!glob_meets(&glob("a/*/c"), &pattern("a/#")));
        assert!(!glob_meets(&glob("a/b/*"), &pattern("a/#")));
        assert!(!glob_meets(&glob("a/x/*"), &pattern("b/#/#")));
        // A parameter cannot hold a '/' nor be empty.
        assert!(!glob_meets(&glob("a/b/c"), &pattern("a/#")));
        assert!(!glob_meets(&glob("a//c"), &pattern("a/#/c")));
        assert!(glob_meets(&glob("a/*/items/*"), &pattern("#/#/#/#/#")));
    }
}
