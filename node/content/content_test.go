package content

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Mentions
	}{
		{"hello", Mentions{}},
		{"hi <@12> and <@!34> and <@12>", Mentions{Users: []uint64{12, 34}}},
		{"<@&7> ping", Mentions{Roles: []uint64{7}}},
		{"@everyone look", Mentions{Everyone: true}},
		{"@here look", Mentions{Here: true}},
		{"`<@12>` inline code", Mentions{}},
		{"```\n<@12> @everyone\n``` after", Mentions{}},
		{"``a ` <@12>`` b <@13>", Mentions{Users: []uint64{13}}},
		{"unclosed ` <@12>", Mentions{Users: []uint64{12}}},
		{`\<@12> escaped`, Mentions{}},
		{"<@> <@abc> <@99999999999999999999999> <@0>", Mentions{}},
		{"see https://example.org", Mentions{HasLink: true}},
	}
	for _, tt := range tests {
		got := Parse(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"<@1>", "```<@1>```", "`", "<@&", "@everyone", strings.Repeat("`", 50), "\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := Parse(s)
		for _, id := range append(m.Users, m.Roles...) {
			if id == 0 {
				t.Fatalf("zero ID from %q", s)
			}
		}
		if len(m.Users)+len(m.Roles) > len(s)/4 {
			t.Fatalf("more mentions than the text can hold: %q", s)
		}
	})
}
