// Package api serves the client REST API in Discord v10 shapes (spec/client-api.md).
//
// Handlers decode the request, call the chat domain, and encode the answer; every failure
// goes through writeError, the one place that turns errors into Discord's error body.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/snowflake"
	"github.com/hearth-chat/hearth/node/store"
)

// MaxBody is the largest JSON request body accepted.
const MaxBody = 1 << 20

// Options configure New.
type Options struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// RateGlobal is requests per second per token across all routes (burst equal to it);
	// zero means 50.
	RateGlobal float64
	// RateMessages is message creations per 2 seconds per user and channel; zero means 10.
	RateMessages int
	// GatewayURL returns the gateway URL for a request (scheme and host as the client sees
	// them); nil derives it from the request.
	GatewayURL func(r *http.Request) string
	// Observe, if set, is called after each request with its route pattern, status and
	// duration (metrics).
	Observe func(route string, status int, d time.Duration)
	// Uploads parses multipart message uploads; nil refuses them.
	Uploads Uploads
	// Images stores avatars and guild icons sent as data URIs; nil refuses them.
	Images Images
	// Search answers message searches; nil leaves the search routes out.
	Search Searcher
}

// Uploads turns a multipart/form-data message request (Discord's files[n] and
// payload_json) into the JSON payload and stored attachments. abandon undoes the upload's
// quota charges when the message is not created after all. Errors are *chat.Error values.
type Uploads interface {
	ParseMessageUpload(r *http.Request, owner uint64) (payloadJSON []byte, files []model.Attachment, abandon func(), err error)
}

// Images stores the image of a data URI ("data:image/png;base64,…", as Discord's PATCH
// /users/@me and PATCH /guilds/{id} take avatars and icons) and returns its blob's hex
// hash. Errors are *chat.Error values.
type Images interface {
	StoreImage(ctx context.Context, dataURI string, owner uint64) (hash string, err error)
}

// API is the REST handler.
type API struct {
	chat *chat.Service
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	rl   *limiter
}

// New returns the REST API for the domain service.
func New(svc *chat.Service, opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RateGlobal == 0 {
		opts.RateGlobal = 50
	}
	if opts.RateMessages == 0 {
		opts.RateMessages = 10
	}
	a := &API{chat: svc, opts: opts, log: opts.Logger, mux: http.NewServeMux(), rl: newLimiter()}
	a.routes()
	return a
}

// ServeHTTP serves every route under /api/v10, /api/v9 and /api.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Close stops background work (the limiter's sweeper).
func (a *API) Close() { a.rl.close() }

// req is one request being served.
type req struct {
	*http.Request
	w     http.ResponseWriter
	actor snowflake.ID
	token string
	path  pathIDs
}

// pathIDs holds the snowflakes of a route's path parameters, parsed before its handler
// runs (see pathParams); a route without a parameter leaves its field zero.
type pathIDs struct {
	guild, channel, message, user, role, target snowflake.ID
}

// pathParam says how one snowflake path parameter is parsed. A value that is not a
// snowflake is answered with the resource's own unknown-resource error, so clients see the
// same 404 as for an ID that does not exist; me says whether "@me" stands for the caller.
type pathParam struct {
	name    string
	unknown error
	me      bool
	slot    func(*pathIDs) *snowflake.ID
}

// pathParams are the snowflake parameters that route patterns may hold. The name picks the
// error: {member} and {ban} are users too, answered as Unknown Member and Unknown Ban.
var pathParams = []pathParam{
	{"guild", chat.ErrUnknownGuild, false, func(p *pathIDs) *snowflake.ID { return &p.guild }},
	{"channel", chat.ErrUnknownChannel, false, func(p *pathIDs) *snowflake.ID { return &p.channel }},
	{"message", chat.ErrUnknownMessage, false, func(p *pathIDs) *snowflake.ID { return &p.message }},
	{"user", chat.ErrUnknownUser, true, func(p *pathIDs) *snowflake.ID { return &p.user }},
	{"member", chat.ErrUnknownMember, true, func(p *pathIDs) *snowflake.ID { return &p.user }},
	{"ban", chat.ErrUnknownBan, false, func(p *pathIDs) *snowflake.ID { return &p.user }},
	{"role", chat.ErrUnknownRole, false, func(p *pathIDs) *snowflake.ID { return &p.role }},
	{"target", chat.ErrUnknownRole, false, func(p *pathIDs) *snowflake.ID { return &p.target }},
}

// snowflakeParams returns the pathParams that path holds, in order.
func snowflakeParams(path string) []pathParam {
	var out []pathParam
	for _, p := range pathParams {
		if strings.Contains(path, "{"+p.name+"}") {
			out = append(out, p)
		}
	}
	return out
}

// parsePath fills r.path from the request's path parameters.
func (r *req) parsePath(params []pathParam) error {
	for _, p := range params {
		v := r.PathValue(p.name)
		id := r.actor
		if !p.me || v != "@me" {
			var err error
			if id, err = snowflake.Parse(v); err != nil {
				return p.unknown
			}
		}
		*p.slot(&r.path) = id
	}
	return nil
}

// handler serves a request and returns the status, the body to encode (nil for none), or
// an error.
type handler func(r *req) (int, any, error)

// withBody adapts a handler that takes the request's JSON body, decoded into a T first.
func withBody[T any](f func(r *req, body T) (int, any, error)) handler {
	return func(r *req) (int, any, error) {
		var body T
		if err := r.decode(&body); err != nil {
			return 0, nil, err
		}
		return f(r, body)
	}
}

// route registers h for method and path under every API prefix. auth says whether a token is
// required.
func (a *API) route(method, path string, needAuth bool, h handler) {
	params := snowflakeParams(path)
	for _, prefix := range []string{"/api/v10", "/api/v9", "/api"} {
		pattern := method + " " + prefix + path
		a.mux.HandleFunc(pattern, func(w http.ResponseWriter, hr *http.Request) {
			start := time.Now()
			status := a.serve(w, hr, needAuth, path, params, h)
			if a.opts.Observe != nil {
				a.opts.Observe(method+" "+path, status, time.Since(start))
			}
		})
	}
}

func (a *API) serve(w http.ResponseWriter, hr *http.Request, needAuth bool, path string, params []pathParam, h handler) int {
	r := &req{Request: hr, w: w}
	if needAuth {
		r.token = auth.ParseAuthorization(hr.Header.Get("Authorization"))
		uid, err := a.chat.Authenticate(r.token)
		if err != nil {
			return a.writeError(w, hr, err)
		}
		r.actor = uid
		if err := a.rl.allow(w, "global:"+uid.String(), a.opts.RateGlobal, int(a.opts.RateGlobal), "global"); err != nil {
			return a.writeError(w, hr, err)
		}
	}
	if !isMultipart(hr) {
		if hr.ContentLength > MaxBody {
			return a.writeError(w, hr, errTooLarge)
		}
		hr.Body = http.MaxBytesReader(w, hr.Body, MaxBody)
	}
	if err := r.parsePath(params); err != nil {
		return a.writeError(w, hr, err)
	}
	status, body, err := h(r)
	if err != nil {
		return a.writeError(w, hr, err)
	}
	if body == nil {
		w.WriteHeader(status)
		return status
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		a.log.Debug("writing response", "path", path, "err", err)
	}
	return status
}

var (
	errTooLarge = &chat.Error{Status: http.StatusRequestEntityTooLarge, Code: 40005, Message: "Request entity too large"}
	errBadJSON  = &chat.Error{Status: http.StatusBadRequest, Code: 50109, Message: "The request body contains invalid JSON."}
	errNotFound = &chat.Error{Status: http.StatusNotFound, Code: 0, Message: "404: Not Found"}
	errNoSpace  = &chat.Error{Status: http.StatusInsufficientStorage, Code: 0,
		Message: "The node's disk is nearly full: it accepts no changes until its operator frees space."}
	errBadSnowflk = func(field string) *chat.Error {
		return &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{field: {"NUMBER_TYPE_COERCE", "Value is not snowflake."}}}
	}
)

// writeError answers with Discord's error shape. Errors that are not *chat.Error are logged
// and answered as 500 without detail.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			ce = errTooLarge
		case errors.Is(err, store.ErrNoSpace): // logged once by the store when it began [CAPI-095]
			ce = errNoSpace
		default:
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			ce = &chat.Error{Status: http.StatusInternalServerError, Code: 0, Message: "500: Internal Server Error"}
		}
	}
	body := map[string]any{"code": ce.Code, "message": ce.Message}
	if len(ce.Fields) > 0 {
		errs := map[string]any{}
		for field, fe := range ce.Fields {
			errs[field] = map[string]any{"_errors": []map[string]string{{"code": fe[0], "message": fe[1]}}}
		}
		body["errors"] = errs
	}
	if ce.Status == http.StatusRequestEntityTooLarge {
		// The rest of an oversized body is not read: the connection cannot be reused.
		w.Header().Set("Connection", "close")
	}
	if ce.Status == http.StatusTooManyRequests {
		secs := ce.RetryAfter.Seconds()
		body["retry_after"] = secs
		body["global"] = false
		w.Header().Set("Retry-After", strconv.Itoa(int(secs+0.999)))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(ce.Status)
	_ = json.NewEncoder(w).Encode(body)
	return ce.Status
}

// decode reads a JSON body into v. An empty body decodes as {}.
func (r *req) decode(v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return fmt.Errorf("api: read body: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
				Fields: map[string][2]string{te.Field: {"BASE_TYPE_INVALID", "Invalid type: " + te.Value}}}
		}
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errBadJSON
		}
		return &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{"_body": {"BASE_TYPE_INVALID", err.Error()}}}
	}
	return nil
}

// queryID parses an optional snowflake query parameter.
func (r *req) queryID(name string) (snowflake.ID, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	id, err := snowflake.Parse(v)
	if err != nil {
		return 0, errBadSnowflk(name)
	}
	return id, nil
}

// queryInt parses an optional integer query parameter.
func (r *req) queryInt(name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{name: {"NUMBER_TYPE_COERCE", "Value is not int."}}}
	}
	return n, nil
}

func isMultipart(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "multipart/form-data")
}

// clientAddr is the request's remote IP (without port).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
