package docs

// Operations describes every route the server can register, keyed by
// "METHOD PATH" with Echo's path template. It is the one place to document
// a route: the OpenAPI document is built from the routes actually
// registered, each looked up here, and a test fails when a registered
// route has no entry. HEAD routes share their GET entry.
var Operations = map[string]Operation{
	// Probes and pages: always open.
	"GET /healthz": {Tag: tagProbes, Summary: "Liveness: the process serves HTTP", Access: Open},
	"GET /readyz": {Tag: tagProbes, Summary: "Readiness: database, schema, not draining (\"degraded\" while an identity provider's keys are not loaded)",
		Access: Open, Errors: []int{503}},
	"GET /version":                      {Tag: tagProbes, Summary: "Build version and commit", Access: Open},
	"GET /":                             {Tag: tagPages, Summary: "Landing page", Access: Open, HTML: true},
	"GET /assets/*":                     {Tag: tagPages, Summary: "The pages' stylesheet and script, under a version (immutable)", Access: Open, Params: []Param{pathRest("file")}, Raw: true},
	"GET /login":                        {Tag: tagPages, Summary: "Sign-in page: every provider", Access: Open, Params: []Param{query("next")}, HTML: true},
	"POST /login/:provider":             {Tag: tagPages, Summary: "Sign in with a password provider (form: username, password, csrf, next); sets the session cookies and redirects to the account", Access: Open, Params: []Param{pathParam("provider")}, Form: true, HTML: true, Redirect: true, Errors: []int{401, 403, 404, 422, 429}},
	"GET /login/:provider":              {Tag: tagPages, Summary: "Continue with an OIDC provider: to the provider, back to the account", Access: Open, Params: []Param{pathParam("provider"), query("next")}, Redirect: true, Errors: []int{404}},
	"GET /account":                      {Tag: tagPages, Summary: "My account: who am I, my sessions and API keys (signed in with the page's session cookies; else to sign in)", Access: Open, HTML: true, Redirect: true},
	"POST /account/logout":              {Tag: tagPages, Summary: "Sign out: ends the browser's session (form: csrf)", Access: Open, Form: true, Redirect: true, Errors: []int{403}},
	"POST /account/sessions/:id/revoke": {Tag: tagPages, Summary: "Revoke one of my sessions, or anyone's as an admin (form: csrf, return)", Access: Open, Params: []Param{pathParam("id")}, Form: true, Redirect: true, Errors: []int{403, 404}},
	"POST /account/apikeys":             {Tag: tagPages, Summary: "Create an API key (form: csrf, note, expires_in, scopes); the page shows its secret once", Access: Open, Form: true, HTML: true, Errors: []int{400, 403, 422}},
	"POST /account/apikeys/:first_eight/revoke":        {Tag: tagPages, Summary: "Revoke one of my API keys (form: csrf, return)", Access: Open, Params: []Param{pathParam("first_eight")}, Form: true, Redirect: true, Errors: []int{403, 404}},
	"GET /account/principals":                          {Tag: tagPages, Summary: "Every principal (admins)", Access: Open, Params: []Param{query("offset")}, HTML: true, Errors: []int{403}},
	"GET /account/principals/:id":                      {Tag: tagPages, Summary: "One principal's identities, sessions (with Revoke) and API keys (admins)", Access: Open, Params: []Param{pathParam("id")}, HTML: true, Errors: []int{403, 404}},
	"GET /docs":                                        {Tag: tagPages, Summary: "Swagger UI", Access: Open, HTML: true},
	"GET /docs/*":                                      {Tag: tagPages, Summary: "Swagger UI assets (embedded swagger-ui-dist)", Access: Open, Params: []Param{pathRest("file")}, Raw: true},
	"GET /openapi.json":                                {Tag: tagPages, Summary: "This OpenAPI document", Access: Open},
	"GET /api/v1/openapi.json":                         {Tag: tagPages, Summary: "This OpenAPI document", Access: Open},
	"GET /api/v1/docs":                                 {Tag: tagPages, Summary: "Swagger UI", Access: Open, HTML: true},
	"GET /api/v1":                                      {Tag: tagAbout, Summary: "About: API version, formats, authentication providers (also at /api/v1/)", Access: Open},
	"GET /api/v1/metrics":                              {Tag: tagProbes, Summary: "Prometheus metrics (scope metrics, as Tiled; or unauthenticated on --metrics-addr)", Access: Authenticated, Raw: true, Errors: []int{401}},
	"GET /api/v1/":                                     {Tag: tagAbout, Summary: "About: API version, formats, authentication providers", Access: Open},
	"POST /api/v1/reload":                              {Tag: tagAdmin, Summary: "Re-read the served trees and list what changed (reload_scopes, an admin, or X-Admin-Token)", Access: Reload, Errors: []int{401, 403}},
	"GET /api/v1/metadata/*":                           {Tag: tagData, Summary: "A node's metadata and structure", Access: Read, Params: []Param{pathRest("path")}, Errors: []int{401, 403, 404}},
	"GET /api/v1/search/*":                             {Tag: tagData, Summary: "A container's children, paged (page[offset], page[limit])", Access: Read, Params: []Param{pathRest("path"), query("page[offset]"), query("page[limit]"), query("fields")}, Errors: []int{401, 403, 404}},
	"GET /api/v1/array/full/*":                         {Tag: tagData, Summary: "An array, or a slice of it", Access: Read, Params: []Param{pathRest("path"), query("slice"), query("format")}, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"GET /api/v1/array/block/*":                        {Tag: tagData, Summary: "One block of an array", Access: Read, Params: []Param{pathRest("path"), query("block"), query("slice"), query("format")}, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"GET /api/v1/table/full/*":                         {Tag: tagData, Summary: "A whole table", Access: Read, Params: []Param{pathRest("path"), query("column"), query("format")}, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"GET /api/v1/table/partition/*":                    {Tag: tagData, Summary: "One partition of a table", Access: Read, Params: []Param{pathRest("path"), query("partition"), query("column"), query("format")}, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"GET /api/v1/container/full/*":                     {Tag: tagData, Summary: "A container's contents in one document", Access: Read, Params: []Param{pathRest("path"), query("format")}, Errors: []int{401, 403, 404, 406}, Raw: true},
	"GET /api/v1/distinct/*":                           {Tag: tagData, Summary: "Distinct metadata values, specs and structure families under a container", Access: Read, Params: []Param{pathRest("path"), query("metadata"), query("structure_families"), query("specs"), query("counts")}, Errors: []int{401, 403, 404}},
	"GET /api/v1/revisions/*":                          {Tag: tagData, Summary: "A node's metadata revisions (this server's trees have none: 405)", Access: Read, Params: []Param{pathRest("path")}, Errors: []int{401, 404, 405}},
	"POST /api/v1/table/full/*":                        {Tag: tagData, Summary: "A whole table, with the query in a form body", Access: Read, Params: []Param{pathRest("path")}, Form: true, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"POST /api/v1/table/partition/*":                   {Tag: tagData, Summary: "One partition of a table, with the query in a form body", Access: Read, Params: []Param{pathRest("path")}, Form: true, Errors: []int{400, 401, 403, 404, 406}, Raw: true},
	"POST /api/v1/container/full/*":                    {Tag: tagData, Summary: "A container's contents, with the query in a form body", Access: Read, Params: []Param{pathRest("path")}, Form: true, Errors: []int{401, 403, 404, 406}, Raw: true},
	"POST /api/v1/metadata/*":                          writeOp("Create a node (write:metadata, create:node)"),
	"POST /api/v1/register/*":                          writeOp("Register external data as a node (write:metadata, create:node, register)"),
	"PUT /api/v1/data_source/*":                        writeOp("Replace a node's data source (write:metadata, register)"),
	"PUT /api/v1/metadata/*":                           writeOp("Replace a node's metadata (write:metadata)"),
	"PATCH /api/v1/metadata/*":                         writeOp("Patch a node's metadata (write:metadata)"),
	"DELETE /api/v1/metadata/*":                        writeOp("Delete a node (delete:node)"),
	"DELETE /api/v1/revisions/*":                       writeOp("Delete a metadata revision (delete:revision)"),
	"PUT /api/v1/array/full/*":                         writeOp("Write a whole array (write:data)"),
	"PUT /api/v1/array/block/*":                        writeOp("Write one block of an array (write:data)"),
	"PATCH /api/v1/array/full/*":                       writeOp("Patch or extend an array (write:data)"),
	"PUT /api/v1/table/full/*":                         writeOp("Write a whole table (write:data)"),
	"PUT /api/v1/node/full/*":                          writeOp("Write a whole node (write:data)"),
	"PUT /api/v1/table/partition/*":                    writeOp("Write one partition of a table (write:data)"),
	"PATCH /api/v1/table/partition/*":                  writeOp("Append to a partition of a table (write:data)"),
	"PUT /api/v1/awkward/full/*":                       writeOp("Write an awkward array (write:data)"),
	"PUT /api/v1/ragged/full/*":                        writeOp("Write a ragged array (write:data)"),
	"PUT /api/v1/ragged/block/*":                       writeOp("Write one block of a ragged array (write:data)"),
	"PATCH /api/v1/ragged/full/*":                      writeOp("Patch a ragged array (write:data)"),
	"POST /api/v1/auth/provider/:provider/token":       {Tag: tagAuth, Summary: "Password login (form: username, password), or the device-code poll of an external provider", Access: Open, Params: []Param{pathParam("provider")}, Form: true, Errors: []int{400, 401, 404, 429}},
	"GET /api/v1/auth/provider/:provider/authorize":    {Tag: tagAuth, Summary: "Start a browser login at the OIDC provider (redirect)", Access: Open, Params: []Param{pathParam("provider"), query("state")}, Redirect: true},
	"POST /api/v1/auth/provider/:provider/authorize":   {Tag: tagAuth, Summary: "Start a device-code login", Access: Open, Params: []Param{pathParam("provider")}},
	"GET /api/v1/auth/provider/:provider/code":         {Tag: tagAuth, Summary: "The OIDC provider's redirect back with a code", Access: Open, Params: []Param{pathParam("provider"), query("code"), query("state")}, Errors: []int{401}},
	"GET /api/v1/auth/provider/:provider/device_code":  {Tag: tagAuth, Summary: "Form asking for the device login's user code", Access: Open, Params: []Param{pathParam("provider"), query("code")}, HTML: true},
	"POST /api/v1/auth/provider/:provider/device_code": {Tag: tagAuth, Summary: "Submit the device login's user code", Access: Open, Params: []Param{pathParam("provider")}, Form: true, HTML: true, Errors: []int{401}},
	"POST /api/v1/auth/session/refresh":                {Tag: tagAuth, Summary: "Rotate a refresh token for new tokens", Access: Open, JSONBody: true, Errors: []int{401, 422}},
	"POST /api/v1/auth/session/revoke":                 {Tag: tagAuth, Summary: "End the session of a refresh token", Access: Open, JSONBody: true, NoContent: true, Errors: []int{409, 422}},
	"DELETE /api/v1/auth/session/revoke/:session_id":   {Tag: tagAuth, Summary: "End a session by id (own, or any as admin)", Access: Authenticated, Params: []Param{pathParam("session_id")}, NoContent: true, Errors: []int{401, 404}},
	"POST /api/v1/auth/logout":                         {Tag: tagAuth, Summary: "Log out: clear the API-key cookie and end the session", Access: Open},
	"GET /api/v1/auth/whoami":                          {Tag: tagAuth, Summary: "The caller's principal, or null", Access: Open},
	"POST /api/v1/auth/apikey":                         {Tag: tagKeys, Summary: "Create an API key (scope create:apikeys)", Access: Authenticated, JSONBody: true, Errors: []int{400, 401, 403}},
	"GET /api/v1/auth/apikey":                          {Tag: tagKeys, Summary: "Describe the API key this request carries", Access: Authenticated, Errors: []int{401}},
	"DELETE /api/v1/auth/apikey":                       {Tag: tagKeys, Summary: "Revoke one of the caller's API keys (scope revoke:apikeys)", Access: Authenticated, Params: []Param{query("first_eight")}, NoContent: true, Errors: []int{401, 404}},
	"GET /api/v1/auth/principal":                       {Tag: tagAdmin, Summary: "List principals (scope read:principals)", Access: Authenticated, Params: []Param{query("page[offset]"), query("page[limit]")}, Errors: []int{401}},
	"POST /api/v1/auth/principal":                      {Tag: tagAdmin, Summary: "Create a service principal (scope write:principals)", Access: Authenticated, Params: []Param{query("role")}, Errors: []int{401}},
	"GET /api/v1/auth/principal/:uuid":                 {Tag: tagAdmin, Summary: "One principal (scope read:principals)", Access: Authenticated, Params: []Param{pathParam("uuid")}, Errors: []int{401, 404}},
	"POST /api/v1/auth/principal/:uuid/apikey":         {Tag: tagAdmin, Summary: "Create an API key for a principal (scope admin:apikeys)", Access: Authenticated, Params: []Param{pathParam("uuid")}, JSONBody: true, Errors: []int{401, 404}},
	"DELETE /api/v1/auth/principal/:uuid/apikey":       {Tag: tagAdmin, Summary: "Revoke a principal's API key (scope admin:apikeys)", Access: Authenticated, Params: []Param{pathParam("uuid"), query("first_eight")}, NoContent: true, Errors: []int{401, 404}},
}

const (
	tagProbes = "probes"
	tagPages  = "docs"
	tagAbout  = "about"
	tagData   = "data"
	tagAuth   = "authentication"
	tagKeys   = "api keys"
	tagAdmin  = "admin"
)

// Access says which credentials a route takes, for its security list.
type Access int

const (
	// Open routes answer anyone (credentials, if sent, are still read).
	Open Access = iota
	// Read routes need read scopes (and, in resource-server mode with
	// anonymous_read off, a token holding read_scopes).
	Read
	// Authenticated routes need a principal (session, API key or bearer JWT).
	Authenticated
	// Reload also takes the X-Admin-Token header.
	Reload
)

// Operation documents one route.
type Operation struct {
	Tag     string
	Summary string
	Access  Access
	Params  []Param
	// Errors are the 4xx/5xx statuses worth listing besides the defaults.
	Errors []int
	// Body and answer shapes.
	JSONBody, Form, HTML, Raw, NoContent, Redirect bool
}

// Param is a path or query parameter.
type Param struct {
	Name     string
	In       string
	Required bool
	// Rest marks the path remainder (Echo's "*"): slashes allowed.
	Rest bool
}

// writeOp describes one of Tiled's write routes; this server's trees are
// read-only, so after the scope and path checks they answer 405.
func writeOp(summary string) Operation {
	return Operation{Tag: tagData, Summary: summary, Access: Authenticated, Params: []Param{pathRest("path")},
		JSONBody: true, Errors: []int{401, 404, 405}}
}

func pathParam(name string) Param { return Param{Name: name, In: "path", Required: true} }
func pathRest(name string) Param  { return Param{Name: name, In: "path", Required: true, Rest: true} }
func query(name string) Param     { return Param{Name: name, In: "query"} }

// IsRead reports whether the route (method and Echo path template) reads
// the served data, by its entry in Operations: the routes where the
// resource server's read_scopes apply. HEAD is its GET.
func IsRead(method, path string) bool {
	if method == "HEAD" {
		method = "GET"
	}
	op, ok := Operations[method+" "+path]
	return ok && op.Access == Read
}
