//! Events shaped like the examples in AWS's documentation (API Gateway HTTP API payload 2.0,
//! REST API payload 1.0, Application Load Balancer, Lambda function URLs, EventBridge scheduled
//! events, API Gateway Lambda authorizers), and the reading of an HTTP function's answer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const API_ID: &str = "abcdef123";
pub const REGION: &str = "us-east-1";

/// One HTTP request, to be wrapped in the event of any HTTP integration.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// The path, with the query string if any.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Sends the body base64-encoded (`isBase64Encoded: true`), as API Gateway does for many
    /// content types.
    pub base64_body: bool,
    pub source_ip: String,
    /// The API Gateway stage (`$default` unless set).
    pub stage: String,
    /// The PEM of the client certificate API Gateway's mutual TLS received (custom domain with a
    /// truststore), put where API Gateway puts it.
    pub client_cert_pem: Option<String>,
}

impl HttpRequest {
    pub fn new(method: &str, path: &str) -> HttpRequest {
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            base64_body: false,
            source_ip: "198.51.100.7".to_owned(),
            stage: "$default".to_owned(),
            client_cert_pem: None,
        }
    }

    pub fn get(path: &str) -> HttpRequest {
        HttpRequest::new("GET", path)
    }

    /// A POST of an `application/x-www-form-urlencoded` body.
    pub fn post_form(path: &str, form: &[(&str, &str)]) -> HttpRequest {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        HttpRequest::new("POST", path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
    }

    /// The request came over API Gateway's mutual TLS with this certificate.
    pub fn client_cert(mut self, pem: &str) -> HttpRequest {
        self.client_cert_pem = Some(pem.to_owned());
        self
    }

    /// `clientCert` as API Gateway documents it for mutual TLS: the PEM, subject and issuer DNs,
    /// serial number and validity (the function reads only the PEM).
    fn client_cert_field(&self) -> Option<Value> {
        self.client_cert_pem.as_ref().map(|pem| {
            json!({
                "clientCertPem": pem,
                "subjectDN": "CN=partner",
                "issuerDN": "CN=partner",
                "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
                "validity": {
                    "notBefore": "May 28 12:30:02 2026 GMT",
                    "notAfter": "Aug  5 09:36:04 2027 GMT"
                }
            })
        })
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> HttpRequest {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn basic(self, id: &str, secret: &str) -> HttpRequest {
        let credentials = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
        self.header("authorization", &format!("Basic {credentials}"))
    }

    pub fn body(mut self, body: Vec<u8>) -> HttpRequest {
        self.body = Some(body);
        self
    }

    pub fn base64(mut self) -> HttpRequest {
        self.base64_body = true;
        self
    }

    pub fn from_ip(mut self, ip: &str) -> HttpRequest {
        self.source_ip = ip.to_owned();
        self
    }

    pub fn stage(mut self, stage: &str) -> HttpRequest {
        self.stage = stage.to_owned();
        self
    }

    fn split_path(&self) -> (&str, &str) {
        self.path.split_once('?').unwrap_or((&self.path, ""))
    }

    fn body_fields(&self) -> (Value, bool) {
        match &self.body {
            None => (Value::Null, false),
            Some(bytes) if self.base64_body => (Value::String(STANDARD.encode(bytes)), true),
            Some(bytes) => (
                Value::String(String::from_utf8(bytes.clone()).expect("a text body")),
                false,
            ),
        }
    }

    fn single_headers(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (name, value) in &self.headers {
            let joined = match map.get(name) {
                Some(Value::String(old)) => format!("{old},{value}"),
                _ => value.clone(),
            };
            map.insert(name.clone(), Value::String(joined));
        }
        map
    }

    fn multi_headers(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (name, value) in &self.headers {
            map.entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .unwrap()
                .push(Value::String(value.clone()));
        }
        map
    }

    fn query_map(&self) -> (Value, Value) {
        let (_, query) = self.split_path();
        if query.is_empty() {
            return (Value::Null, Value::Null);
        }
        let (mut single, mut multi) = (Map::new(), Map::new());
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            single.insert(k.to_owned(), Value::String(v.to_owned()));
            multi
                .entry(k.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .unwrap()
                .push(Value::String(v.to_owned()));
        }
        (Value::Object(single), Value::Object(multi))
    }

    /// API Gateway HTTP API, payload format 2.0. The raw path carries the stage when the stage
    /// is not `$default`, as API Gateway sends it.
    pub fn http_api(&self) -> Value {
        let (path, query) = self.split_path();
        let raw_path = if self.stage == "$default" {
            path.to_owned()
        } else {
            format!("/{}{path}", self.stage)
        };
        self.v2_event(
            &raw_path,
            query,
            &format!("{API_ID}.execute-api.{REGION}.amazonaws.com"),
            &self.stage,
        )
    }

    /// A Lambda function URL (payload format 2.0, no stage).
    pub fn function_url(&self) -> Value {
        let (path, query) = self.split_path();
        let mut event = self.v2_event(
            path,
            query,
            &format!("a1b2c3d4e5f6.lambda-url.{REGION}.on.aws"),
            "$default",
        );
        event["requestContext"]["apiId"] = json!("a1b2c3d4e5f6");
        event["requestContext"]["domainPrefix"] = json!("a1b2c3d4e5f6");
        event
    }

    fn v2_event(&self, raw_path: &str, query: &str, domain: &str, stage: &str) -> Value {
        let (body, encoded) = self.body_fields();
        let (single_query, _) = self.query_map();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": self.single_headers(),
            "queryStringParameters": single_query,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "domainName": domain,
                "domainPrefix": domain.split('.').next().unwrap_or(""),
                "http": {
                    "method": self.method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip,
                    "userAgent": "agent"
                },
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": "$default",
                "stage": stage,
                "time": "12/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1583348638390u64
            },
            "body": body,
            "isBase64Encoded": encoded
        });
        if let Some(cert) = self.client_cert_field() {
            event["requestContext"]["authentication"] = json!({ "clientCert": cert });
        }
        event
    }

    /// API Gateway REST API (payload format 1.0), with a proxy resource. `path` does not carry
    /// the stage; `requestContext.path` does, as API Gateway sends them.
    pub fn rest_api(&self) -> Value {
        let (path, _) = self.split_path();
        let (body, encoded) = self.body_fields();
        let (single_query, multi_query) = self.query_map();
        let context_path = if self.stage == "$default" {
            path.to_owned()
        } else {
            format!("/{}{path}", self.stage)
        };
        let mut event = json!({
            "version": "1.0",
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": self.method,
            "headers": self.single_headers(),
            "multiValueHeaders": self.multi_headers(),
            "queryStringParameters": single_query,
            "multiValueQueryStringParameters": multi_query,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "domainName": format!("{API_ID}.execute-api.{REGION}.amazonaws.com"),
                "domainPrefix": API_ID,
                "extendedRequestId": "request-id",
                "httpMethod": self.method,
                "identity": {
                    "accessKey": null,
                    "accountId": null,
                    "caller": null,
                    "cognitoAuthenticationProvider": null,
                    "cognitoAuthenticationType": null,
                    "cognitoIdentityId": null,
                    "cognitoIdentityPoolId": null,
                    "principalOrgId": null,
                    "sourceIp": self.source_ip,
                    "user": null,
                    "userAgent": "user-agent",
                    "userArn": null
                },
                "path": context_path,
                "protocol": "HTTP/1.1",
                "requestId": "id=",
                "requestTime": "04/Mar/2020:19:15:17 +0000",
                "requestTimeEpoch": 1583349317135u64,
                "resourceId": "abc123",
                "resourcePath": "/{proxy+}",
                "stage": self.stage
            },
            "pathParameters": { "proxy": path.trim_start_matches('/') },
            "stageVariables": null,
            "body": body,
            "isBase64Encoded": encoded
        });
        if let Some(cert) = self.client_cert_field() {
            event["requestContext"]["identity"]["clientCert"] = cert;
        }
        event
    }

    /// An Application Load Balancer target group event; the client address arrives in
    /// `X-Forwarded-For`, as the load balancer sends it.
    pub fn alb(&self) -> Value {
        let (path, _) = self.split_path();
        let (body, encoded) = self.body_fields();
        let (single_query, _) = self.query_map();
        let mut headers = self.single_headers();
        headers.insert("x-forwarded-for".into(), json!(self.source_ip));
        headers.insert("x-forwarded-port".into(), json!("443"));
        headers.insert("x-forwarded-proto".into(), json!("https"));
        headers.insert(
            "host".into(),
            json!("lambda-alb-123578498.us-east-1.elb.amazonaws.com"),
        );
        json!({
            "requestContext": {
                "elb": {
                    "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-279XGJDqGZ5rsrHC2Fjr/49e9d65c45c6791a"
                }
            },
            "httpMethod": self.method,
            "path": path,
            "queryStringParameters": if single_query.is_null() { json!({}) } else { single_query },
            "headers": headers,
            "body": if body.is_null() { json!("") } else { body },
            "isBase64Encoded": encoded
        })
    }
}

/// An EventBridge (CloudWatch Events) scheduled event.
pub fn scheduled() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2015-10-08T16:53:06Z",
        "region": REGION,
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],
        "detail": {}
    })
}

/// The ARN API Gateway names a method by: `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`.
pub fn method_arn(stage: &str, method: &str, path: &str) -> String {
    format!(
        "arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{stage}/{method}/{}",
        path.trim_start_matches('/')
    )
}

/// A REST API `TOKEN` authorizer event.
pub fn token_authorizer(authorization: &str, method_arn: &str) -> Value {
    json!({
        "type": "TOKEN",
        "authorizationToken": authorization,
        "methodArn": method_arn
    })
}

/// A REST API `REQUEST` authorizer event for `request` at `stage`.
pub fn rest_request_authorizer(request: &HttpRequest) -> Value {
    let (path, _) = request.split_path();
    let (single_query, multi_query) = request.query_map();
    let mut event = json!({
        "type": "REQUEST",
        "methodArn": method_arn(&request.stage, &request.method, path),
        "resource": path,
        "path": path,
        "httpMethod": request.method,
        "headers": request.single_headers(),
        "multiValueHeaders": request.multi_headers(),
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "path": format!("/{}{path}", request.stage),
            "accountId": ACCOUNT,
            "resourceId": "05c7jb",
            "stage": request.stage,
            "requestId": "e5d6e6a8-4aa3-11e8-9b3c-0f8d6c2d1e2a",
            "identity": { "sourceIp": request.source_ip, "userAgent": "agent" },
            "resourcePath": path,
            "httpMethod": request.method,
            "apiId": API_ID
        }
    });
    if let Some(cert) = request.client_cert_field() {
        event["requestContext"]["identity"]["clientCert"] = cert;
    }
    event
}

/// An HTTP API (payload 2.0) `REQUEST` authorizer event for `request`, with the
/// `Authorization` header as identity source.
pub fn http_api_authorizer(request: &HttpRequest) -> Value {
    let mut event = request.http_api();
    let (path, _) = request.split_path();
    let object = event.as_object_mut().unwrap();
    object.insert("type".into(), json!("REQUEST"));
    object.insert(
        "routeArn".into(),
        json!(method_arn(&request.stage, &request.method, path)),
    );
    let identity: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name == "authorization")
        .map(|(_, value)| value.as_str())
        .collect();
    object.insert("identitySource".into(), json!(identity));
    object.remove("body");
    object.remove("isBase64Encoded");
    event
}

/// An HTTP function's answer, whatever the payload format.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names in lower case; a header sent several times appears several times.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn from_response(response: &Value) -> HttpAnswer {
        let status = response["statusCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("no statusCode in {response}")) as u16;
        let mut headers = Vec::new();
        if let Some(multi) = response["multiValueHeaders"].as_object() {
            for (name, values) in multi {
                for value in values.as_array().into_iter().flatten() {
                    headers.push((
                        name.to_ascii_lowercase(),
                        value.as_str().unwrap_or("").to_owned(),
                    ));
                }
            }
        }
        if let Some(single) = response["headers"].as_object() {
            for (name, value) in single {
                let name = name.to_ascii_lowercase();
                if !headers.iter().any(|(n, _)| *n == name) {
                    headers.push((name, value.as_str().unwrap_or("").to_owned()));
                }
            }
        }
        let body = match &response["body"] {
            Value::String(text) if response["isBase64Encoded"] == json!(true) => {
                STANDARD.decode(text).expect("a base64 body")
            }
            Value::String(text) => text.clone().into_bytes(),
            _ => Vec::new(),
        };
        HttpAnswer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("a JSON body: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Form-encodes one component (RFC 6749 appendix B).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
