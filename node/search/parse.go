package search

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Resolver turns the names in from:, mentions: and in: filters into IDs. The
// node implements it over its member and channel lists; the search package
// never looks names up itself.
type Resolver interface {
	// ResolveUser returns the IDs of the guild's members that name denotes
	// (username, display name or nickname, compared as the node sees fit).
	// No match is an empty slice and a nil error.
	ResolveUser(ctx context.Context, guildID uint64, name string) ([]uint64, error)
	// ResolveChannel returns the IDs of the guild's channels named name.
	ResolveChannel(ctx context.Context, guildID uint64, name string) ([]uint64, error)
}

// filter keys of the text form (spec/search.md, section Text form).
const (
	keyFrom     = "from"
	keyMentions = "mentions"
	keyIn       = "in"
	keyHas      = "has"
	keyBefore   = "before"
	keyAfter    = "after"
	keyDuring   = "during"
	keyPinned   = "pinned"
)

var filterKeys = []string{keyFrom, keyMentions, keyIn, keyHas, keyBefore, keyAfter, keyDuring, keyPinned}

// ParseQuery parses the text form typed in the client's search box, such as
// `from:alice in:general has:link before:2026-01-01 "exact phrase" words`.
// The result has GuildID 0 and default paging; the caller sets GuildID and
// passes the query through Resolve before Search. Errors are *QueryError.
func ParseQuery(text string) (Query, error) {
	var q Query
	if err := parseInto(&q, text); err != nil {
		return Query{}, err
	}
	if err := q.check(); err != nil {
		return Query{}, err
	}
	return q, nil
}

func parseInto(q *Query, text string) error {
	if !utf8.ValidString(text) {
		return &QueryError{Code: CodeSyntax, Field: "content", Pos: 0, Msg: "query is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(text); n > MaxQueryRunes {
		return badf(CodeLimit, "content", "query is %d characters long, the limit is %d", n, MaxQueryRunes)
	}
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		start := i
		if r == '"' {
			s, next, err := readQuoted(text, i)
			if err != nil {
				return err
			}
			i = next
			if strings.TrimSpace(s) != "" {
				q.Phrases = append(q.Phrases, s)
			}
			continue
		}
		end := wordEnd(text, i)
		word := text[i:end]
		key, _, isFilter := strings.Cut(word, ":")
		key = strings.ToLower(key)
		if !isFilter || !slices.Contains(filterKeys, key) {
			q.Words = append(q.Words, word)
			i = end
			continue
		}
		// A filter: the value follows the colon, quoted or bare.
		vstart := start + len(key) + 1
		var value string
		if vstart < len(text) && text[vstart] == '"' {
			s, next, err := readQuoted(text, vstart)
			if err != nil {
				return err
			}
			value, i = s, next
		} else {
			value, i = text[vstart:end], end
		}
		if strings.TrimSpace(value) == "" {
			return &QueryError{Code: CodeSyntax, Field: key, Pos: start, Msg: key + ": needs a value"}
		}
		if err := applyFilter(q, key, value, start); err != nil {
			return err
		}
	}
	return nil
}

// wordEnd returns the byte offset of the first space at or after i.
func wordEnd(text string, i int) int {
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			return i
		}
		i += size
	}
	return i
}

// readQuoted reads a double-quoted string starting at text[i] == '"'. Inside,
// \" and \\ escape a quote and a backslash; any other backslash is literal.
func readQuoted(text string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(text); j++ {
		switch c := text[j]; c {
		case '"':
			return b.String(), j + 1, nil
		case '\\':
			if j+1 < len(text) && (text[j+1] == '"' || text[j+1] == '\\') {
				j++
				b.WriteByte(text[j])
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, &QueryError{Code: CodeSyntax, Field: "content", Pos: i, Msg: "unterminated quote"}
}

func applyFilter(q *Query, key, value string, pos int) error {
	switch key {
	case keyFrom, keyMentions:
		id, isID, err := mentionID(value, "@", key, pos)
		if err != nil {
			return err
		}
		switch {
		case isID && key == keyFrom:
			q.AuthorIDs = append(q.AuthorIDs, id)
		case isID:
			q.MentionIDs = append(q.MentionIDs, id)
		case key == keyFrom:
			q.AuthorNames = append(q.AuthorNames, value)
		default:
			q.MentionNames = append(q.MentionNames, value)
		}
	case keyIn:
		id, isID, err := mentionID(value, "#", key, pos)
		if err != nil {
			return err
		}
		if isID {
			q.ChannelIDs = append(q.ChannelIDs, id)
		} else {
			q.ChannelNames = append(q.ChannelNames, strings.TrimPrefix(value, "#"))
		}
	case keyHas:
		h, ok := ParseHas(value)
		if !ok {
			return &QueryError{Code: CodeValue, Field: key, Pos: pos, Msg: fmt.Sprintf("unknown has: value %q", value)}
		}
		q.Has |= h
	case keyPinned:
		b, ok := parseBool(value)
		if !ok {
			return &QueryError{Code: CodeValue, Field: key, Pos: pos, Msg: fmt.Sprintf("pinned: wants true or false, not %q", value)}
		}
		q.Pinned = &b
	case keyBefore, keyAfter, keyDuring:
		start, end, err := parseDate(value)
		if err != nil {
			err.Field, err.Pos = key, pos
			return err
		}
		if key != keyAfter {
			if key == keyBefore {
				q.narrowMax(SnowflakeAt(start))
			} else {
				q.narrowMax(SnowflakeAt(end))
			}
		}
		if key != keyBefore {
			lo := SnowflakeAt(start)
			if key == keyAfter {
				lo = SnowflakeAt(end)
			}
			if lo > 0 {
				q.narrowMin(lo - 1)
			}
		}
	}
	return nil
}

func (q *Query) narrowMin(id uint64) {
	if id > q.MinID {
		q.MinID = id
	}
}

func (q *Query) narrowMax(id uint64) {
	if q.MaxID == 0 || id < q.MaxID {
		q.MaxID = id
	}
}

// mentionID recognises Discord's mention syntax <@123>, <@!123> and <#123>.
func mentionID(value, sigil, key string, pos int) (uint64, bool, error) {
	if !strings.HasPrefix(value, "<"+sigil) || !strings.HasSuffix(value, ">") {
		return 0, false, nil
	}
	digits := strings.TrimSuffix(strings.TrimPrefix(value, "<"+sigil), ">")
	if sigil == "@" {
		digits = strings.TrimPrefix(digits, "!")
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || id == 0 {
		return 0, false, &QueryError{Code: CodeValue, Field: key, Pos: pos, Msg: fmt.Sprintf("bad mention %q", value)}
	}
	return id, true, nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes":
		return true, true
	case "false", "no":
		return false, true
	}
	return false, false
}

var (
	minDate = time.UnixMilli(DiscordEpochMillis).UTC()
	maxDate = time.UnixMilli(DiscordEpochMillis + maxSnowflakeMillis).UTC()
)

// parseDate reads a date (YYYY, YYYY-MM, YYYY-MM-DD, all UTC) or an RFC 3339
// instant and returns the half-open interval [start, end) it denotes.
func parseDate(s string) (time.Time, time.Time, *QueryError) {
	var start, end time.Time
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		start, end = t.UTC(), t.UTC().Add(time.Millisecond)
	} else if t, err := time.Parse(time.DateOnly, s); err == nil {
		start, end = t, t.AddDate(0, 0, 1)
	} else if t, err := time.Parse("2006-01", s); err == nil {
		start, end = t, t.AddDate(0, 1, 0)
	} else if t, err := time.Parse("2006", s); err == nil {
		start, end = t, t.AddDate(1, 0, 0)
	} else {
		return start, end, badf(CodeValue, "", "bad date %q: want YYYY-MM-DD, YYYY-MM, YYYY or RFC 3339", s)
	}
	if start.Before(minDate) || end.After(maxDate) {
		return start, end, badf(CodeRange, "", "date %q is outside %s..%s", s, minDate.Format(time.DateOnly), maxDate.Format(time.DateOnly))
	}
	return start, end, nil
}

// FromParams builds a Query from the query string of Discord's
// GET /guilds/{guild.id}/messages/search. The content parameter accepts the
// whole text form, so filters typed into it apply as well. Unknown parameters
// are ignored, as Discord does. The caller sets GuildID and then calls
// Resolve. Errors are *QueryError naming the parameter.
func FromParams(v url.Values) (Query, error) {
	var q Query
	one := func(name string) (string, bool, error) {
		vals, ok := v[name]
		if !ok {
			return "", false, nil
		}
		if len(vals) != 1 {
			return "", false, badf(CodeValue, name, "given %d times, want once", len(vals))
		}
		return vals[0], true, nil
	}
	if s, ok, err := one("content"); err != nil {
		return Query{}, err
	} else if ok {
		if err := parseInto(&q, s); err != nil {
			return Query{}, err
		}
	}
	for _, p := range []struct {
		name string
		dst  *[]uint64
	}{{"author_id", &q.AuthorIDs}, {"channel_id", &q.ChannelIDs}, {"mentions", &q.MentionIDs}} {
		for _, s := range v[p.name] {
			id, err := strconv.ParseUint(s, 10, 64)
			if err != nil || id == 0 {
				return Query{}, badf(CodeValue, p.name, "%q is not a snowflake", s)
			}
			*p.dst = append(*p.dst, id)
		}
	}
	for _, s := range v["has"] {
		h, ok := ParseHas(s)
		if !ok {
			return Query{}, badf(CodeValue, "has", "unknown value %q", s)
		}
		q.Has |= h
	}
	for _, p := range []struct {
		name string
		set  func(uint64)
	}{{"min_id", q.narrowMin}, {"max_id", q.narrowMax}} {
		s, ok, err := one(p.name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		id, perr := strconv.ParseUint(s, 10, 64)
		if perr != nil {
			return Query{}, badf(CodeValue, p.name, "%q is not a snowflake", s)
		}
		p.set(id)
	}
	for _, p := range []struct {
		name string
		set  func(bool)
	}{
		{"mention_everyone", func(b bool) { q.MentionsEveryone = b }},
		{"pinned", func(b bool) { q.Pinned = &b }},
	} {
		s, ok, err := one(p.name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		b, bok := parseBool(s)
		if !bok {
			return Query{}, badf(CodeValue, p.name, "want true or false, not %q", s)
		}
		p.set(b)
	}
	if s, ok, err := one("sort_by"); err != nil {
		return Query{}, err
	} else if ok {
		switch s {
		case "timestamp":
			q.SortBy = SortTimestamp
		case "relevance":
			q.SortBy = SortRelevance
		default:
			return Query{}, badf(CodeValue, "sort_by", "want timestamp or relevance, not %q", s)
		}
	}
	if s, ok, err := one("sort_order"); err != nil {
		return Query{}, err
	} else if ok {
		switch s {
		case "desc":
			q.SortOrder = SortDesc
		case "asc":
			q.SortOrder = SortAsc
		default:
			return Query{}, badf(CodeValue, "sort_order", "want asc or desc, not %q", s)
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &q.Offset}, {"limit", &q.Limit}} {
		s, ok, err := one(p.name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		n, perr := strconv.Atoi(s)
		if perr != nil {
			return Query{}, badf(CodeValue, p.name, "%q is not an integer", s)
		}
		*p.dst = n
		if p.name == "limit" && n == 0 {
			return Query{}, badf(CodeLimit, "limit", "must be 1..%d", MaxLimit)
		}
	}
	if err := q.check(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// check validates limits and ranges and normalises the ID lists (sorted,
// without duplicates).
func (q *Query) check() error {
	for _, l := range []*[]uint64{&q.AuthorIDs, &q.ChannelIDs, &q.MentionIDs} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	if n := len(q.Words) + len(q.Phrases); n > MaxClauses {
		return badf(CodeLimit, "content", "%d words and phrases, the limit is %d", n, MaxClauses)
	}
	for _, f := range []struct {
		name string
		n    int
	}{
		{"author_id", len(q.AuthorIDs) + len(q.AuthorNames)},
		{"channel_id", len(q.ChannelIDs) + len(q.ChannelNames)},
		{"mentions", len(q.MentionIDs) + len(q.MentionNames)},
	} {
		if f.n > MaxFilterValues {
			return badf(CodeLimit, f.name, "%d values, the limit is %d", f.n, MaxFilterValues)
		}
	}
	if q.Offset < 0 || q.Offset > MaxOffset {
		return badf(CodeLimit, "offset", "must be 0..%d", MaxOffset)
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return badf(CodeLimit, "limit", "must be 1..%d", MaxLimit)
	}
	if q.MaxID != 0 && q.MaxID <= q.MinID+1 {
		return badf(CodeRange, "max_id", "range (%d, %d) holds no message", q.MinID, q.MaxID)
	}
	if len(q.Words) == 0 && len(q.Phrases) == 0 && !q.hasFilter() {
		return badf(CodeEmpty, "", "give words, a phrase or a filter")
	}
	return nil
}

func (q *Query) hasFilter() bool {
	return len(q.AuthorIDs)+len(q.AuthorNames)+len(q.ChannelIDs)+len(q.ChannelNames)+
		len(q.MentionIDs)+len(q.MentionNames) > 0 ||
		q.MentionsEveryone || q.Has != 0 || q.MinID != 0 || q.MaxID != 0 || q.Pinned != nil || q.nothing
}

// Resolve returns a copy of q with every name filter turned into IDs through
// r, for the guild q.GuildID. A name that matches nothing adds nothing; a
// filter kind whose names all match nothing, and that has no IDs, makes the
// query match nothing (as Discord does for from:nobody).
func (q Query) Resolve(ctx context.Context, r Resolver) (Query, error) {
	out := q
	out.AuthorIDs = slices.Clone(q.AuthorIDs)
	out.ChannelIDs = slices.Clone(q.ChannelIDs)
	out.MentionIDs = slices.Clone(q.MentionIDs)
	out.AuthorNames, out.ChannelNames, out.MentionNames = nil, nil, nil
	for _, k := range []struct {
		names   []string
		dst     *[]uint64
		resolve func(context.Context, uint64, string) ([]uint64, error)
	}{
		{q.AuthorNames, &out.AuthorIDs, r.ResolveUser},
		{q.MentionNames, &out.MentionIDs, r.ResolveUser},
		{q.ChannelNames, &out.ChannelIDs, r.ResolveChannel},
	} {
		if len(k.names) == 0 {
			continue
		}
		for _, name := range k.names {
			ids, err := k.resolve(ctx, q.GuildID, name)
			if err != nil {
				return Query{}, fmt.Errorf("search: resolve %q: %w", name, err)
			}
			*k.dst = append(*k.dst, ids...)
		}
		if len(*k.dst) == 0 {
			out.nothing = true
		}
	}
	if err := out.check(); err != nil {
		return Query{}, err
	}
	return out, nil
}

func (q *Query) unresolved() bool {
	return len(q.AuthorNames)+len(q.ChannelNames)+len(q.MentionNames) > 0
}
