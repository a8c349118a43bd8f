package harness

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaURL is the $id of spec/schemas/client-api.schema.json.
const SchemaURL = "https://hearth.chat/spec/schemas/client-api.schema.json"

// Schema validates payloads against the definitions ($defs) of the client API
// schema.
type Schema struct {
	c     *jsonschema.Compiler
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
}

// LoadSchema reads the client API schema from path.
func LoadSchema(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("harness: schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("harness: schema %s: %w", path, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaURL, doc); err != nil {
		return nil, fmt.Errorf("harness: schema %s: %w", path, err)
	}
	return &Schema{c: c, cache: map[string]*jsonschema.Schema{}}, nil
}

// Validate checks the JSON document data against the definition def (e.g.
// "user") and returns why it does not conform.
func (s *Schema) Validate(def string, data []byte) error {
	s.mu.Lock()
	sch, ok := s.cache[def]
	if !ok {
		var err error
		sch, err = s.c.Compile(SchemaURL + "#/$defs/" + def)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("harness: schema has no usable definition %q: %w", def, err)
		}
		s.cache[def] = sch
	}
	s.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("does not match schema %s: %v", def, err)
	}
	return nil
}

// Conform fails the test (without stopping it) when data does not match def.
// Without a schema in the environment it does nothing.
func (t *T) Conform(def string, data []byte) {
	if t.Env == nil || t.Env.Schema == nil {
		return
	}
	if err := t.Env.Schema.Validate(def, data); err != nil {
		t.Errorf("%v: %s", err, Snip(data))
	}
}
