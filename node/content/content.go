// Package content parses what matters to the server in message text: user, role and
// @everyone/@here mentions, and links. It understands just enough Markdown to ignore mentions
// inside code spans and code blocks, as Discord does. Input is untrusted; the parser is
// linear in the input and never panics (see the fuzz test).
package content

import (
	"strconv"
	"strings"
)

// Mentions is what a message mentions.
type Mentions struct {
	Users    []uint64
	Roles    []uint64
	Everyone bool // @everyone
	Here     bool // @here
	HasLink  bool
}

// Parse scans text for mentions and links outside code.
func Parse(text string) Mentions {
	var m Mentions
	seenU := map[uint64]bool{}
	seenR := map[uint64]bool{}
	i := 0
	for i < len(text) {
		switch {
		case strings.HasPrefix(text[i:], "```"):
			end := strings.Index(text[i+3:], "```")
			if end < 0 {
				i = len(text)
			} else {
				i += 3 + end + 3
			}
			continue
		case text[i] == '`':
			n := 1
			for i+n < len(text) && text[i+n] == '`' {
				n++
			}
			fence := text[i : i+n]
			end := strings.Index(text[i+n:], fence)
			if end < 0 {
				i += n // an unclosed backtick is literal
			} else {
				i += n + end + n
			}
			continue
		case text[i] == '\\' && i+1 < len(text):
			i += 2 // escaped character
			continue
		case text[i] == '<' && strings.HasPrefix(text[i:], "<@"):
			if id, isRole, n := parseTag(text[i:]); n > 0 {
				if isRole && !seenR[id] {
					seenR[id] = true
					m.Roles = append(m.Roles, id)
				} else if !isRole && !seenU[id] {
					seenU[id] = true
					m.Users = append(m.Users, id)
				}
				i += n
				continue
			}
		case text[i] == '@':
			if strings.HasPrefix(text[i:], "@everyone") {
				m.Everyone = true
			} else if strings.HasPrefix(text[i:], "@here") {
				m.Here = true
			}
		case text[i] == 'h' && (strings.HasPrefix(text[i:], "https://") || strings.HasPrefix(text[i:], "http://")):
			m.HasLink = true
		}
		i++
	}
	return m
}

// parseTag parses <@id>, <@!id> or <@&id> at the start of s and returns the ID, whether it
// is a role, and the length consumed (0 if s does not start with a valid tag).
func parseTag(s string) (id uint64, role bool, n int) {
	j := 2
	if j < len(s) && (s[j] == '!' || s[j] == '&') {
		role = s[j] == '&'
		j++
	}
	start := j
	for j < len(s) && j-start < 20 && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == start || j >= len(s) || s[j] != '>' {
		return 0, false, 0
	}
	v, err := strconv.ParseUint(s[start:j], 10, 64)
	if err != nil || v == 0 {
		return 0, false, 0
	}
	return v, role, j + 1
}
