package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Response is a fully read HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Close reports that the server announced "Connection: close" (Go's client removes
	// that header from Header and records it here).
	Close bool
	// Req names the request ("POST /api/v10/guilds") for failure messages.
	Req string
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("%s: body is not the expected JSON (%v): %s", r.Req, err, Snip(r.Body))
	}
	return nil
}

// String describes the answer for failure messages.
func (r *Response) String() string {
	return fmt.Sprintf("%s -> %d %s", r.Req, r.Status, Snip(r.Body))
}

// Snip shortens a body for messages.
func Snip(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// Client issues REST requests to one node, optionally with a token.
type Client struct {
	Node *Node
	// Token is sent as "Authorization: <Token>" (bare form); empty sends none.
	Token string
	// AuthScheme, if set ("Bot", "Bearer"), prefixes the token.
	AuthScheme string
	http       *http.Client
}

var sharedHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// NewClient returns a client for node with token ("" for none).
func NewClient(node *Node, token string) *Client {
	return &Client{Node: node, Token: token, http: sharedHTTP}
}

// API is the REST prefix every route lives under.
const API = "/api/v10"

// Do sends method path (relative to /api/v10 unless it starts with "//", which
// means relative to the origin) with body: nil sends no body, []byte and
// json.RawMessage are sent as is, anything else is JSON-encoded.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("harness: encode body: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	u := c.Node.BaseURL + API + path
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		u = c.Node.BaseURL + "/" + rest
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("harness: %s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		v := c.Token
		if c.AuthScheme != "" {
			v = c.AuthScheme + " " + v
		}
		req.Header.Set("Authorization", v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("harness: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("harness: %s %s: read body: %w", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data, Close: resp.Close, Req: method + " " + path}, nil
}
