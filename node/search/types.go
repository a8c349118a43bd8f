package search

import (
	"fmt"
	"strings"
	"time"
)

// DiscordEpochMillis is the Unix time in milliseconds at which snowflake
// timestamps start (2015-01-01T00:00:00Z), as in Discord's API.
const DiscordEpochMillis = 1420070400000

// maxSnowflakeMillis is the largest millisecond offset a snowflake can carry
// (42 bits), reached in the year 2154.
const maxSnowflakeMillis = 1<<42 - 1

// SnowflakeTime returns the creation time encoded in a snowflake ID.
func SnowflakeTime(id uint64) time.Time {
	return time.UnixMilli(int64(id>>22) + DiscordEpochMillis).UTC()
}

// SnowflakeAt returns the smallest snowflake whose timestamp is t (worker and
// sequence bits zero). Times before the Discord epoch map to 0 and times
// beyond the 42-bit range map to the largest timestamp.
func SnowflakeAt(t time.Time) uint64 {
	ms := t.UnixMilli() - DiscordEpochMillis
	if ms < 0 {
		return 0
	}
	if ms > maxSnowflakeMillis {
		ms = maxSnowflakeMillis
	}
	return uint64(ms) << 22
}

// Has is a bit set of the kinds of content a message carries, matched by the
// has: filter. The zero value means the message carries none of them.
type Has uint16

// Content kinds. The names (see Has.String and ParseHas) are the values of
// Discord's has parameter.
const (
	HasLink Has = 1 << iota
	HasEmbed
	HasFile
	HasImage
	HasVideo
	HasSound
	HasSticker
	HasPoll
)

var hasNames = []struct {
	bit  Has
	name string
}{
	{HasLink, "link"}, {HasEmbed, "embed"}, {HasFile, "file"}, {HasImage, "image"},
	{HasVideo, "video"}, {HasSound, "sound"}, {HasSticker, "sticker"}, {HasPoll, "poll"},
}

// ParseHas returns the bit for one has: value (case-insensitive), or false
// if the value is not one the spec defines.
func ParseHas(name string) (Has, bool) {
	for _, h := range hasNames {
		if strings.EqualFold(h.name, name) {
			return h.bit, true
		}
	}
	return 0, false
}

// names returns the has: values set in h, in a fixed order.
func (h Has) names() []string {
	var out []string
	for _, n := range hasNames {
		if h&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String returns the set's values joined by "|", or "" for the empty set.
func (h Has) String() string { return strings.Join(h.names(), "|") }

// Doc is one message as the index sees it. The node builds it from a stored
// message; the index keeps only what search needs, never the full message.
// The creation time is derived from ID, so it is not a separate field.
type Doc struct {
	// ID is the message snowflake; it names the document (0 is invalid).
	ID uint64
	// GuildID is the guild of the channel; 0 for direct-message channels.
	GuildID uint64
	// ChannelID is the channel the message was posted in (0 is invalid).
	ChannelID uint64
	// AuthorID is the user who posted the message.
	AuthorID uint64
	// Content is the message text as posted (or last edited).
	Content string
	// Mentions lists the users the message mentions; nil means none.
	Mentions []uint64
	// MentionsEveryone is true for @everyone and @here mentions.
	MentionsEveryone bool
	// Has is the set of content kinds the message carries.
	Has Has
	// Pinned is true while the message is pinned.
	Pinned bool
}

func (d Doc) validate() error {
	if d.ID == 0 {
		return fmt.Errorf("search: doc has zero ID")
	}
	if d.ChannelID == 0 {
		return fmt.Errorf("search: doc %d has zero channel ID", d.ID)
	}
	return nil
}

// SortBy is the order of results; the zero value sorts by time.
type SortBy uint8

// Sort keys, named as in Discord's sort_by parameter.
const (
	SortTimestamp SortBy = iota // by message ID, that is by creation time
	SortRelevance               // by score, ties broken by message ID
)

// SortOrder is the direction of the sort; the zero value is newest (or best)
// first.
type SortOrder uint8

// Sort directions, named as in Discord's sort_order parameter.
const (
	SortDesc SortOrder = iota
	SortAsc
)

// Limits on queries (see spec/search.md, section Limits).
const (
	DefaultLimit      = 25   // results per page when the query sets none
	MaxLimit          = 25   // largest page
	MaxOffset         = 9975 // largest offset; offset+limit never exceeds 10,000
	MaxQueryRunes     = 1024 // longest text query
	MaxClauses        = 32   // words plus phrases
	MaxFilterValues   = 100  // values per filter kind (authors, channels, mentions)
	MaxReadable       = 10000
	maxWindow         = MaxOffset + MaxLimit
	everyoneMentionID = "everyone"
)

// Query is a parsed, validated search. Build it with ParseQuery or FromParams
// and then Resolve; Search rejects a Query that still carries names.
// Within one filter kind values are alternatives (OR); different filter kinds,
// words and phrases must all match (AND).
type Query struct {
	// GuildID scopes the search to a guild and is the guild names resolve
	// in; 0 means a search over direct-message channels only.
	GuildID uint64
	// Words must each occur in the content (after analysis).
	Words []string
	// Phrases must each occur in the content as consecutive words.
	Phrases []string
	// AuthorIDs, if any, limits results to messages by one of these users.
	AuthorIDs []uint64
	// ChannelIDs, if any, limits results to these channels (always further
	// limited to the readable set given to Search).
	ChannelIDs []uint64
	// MentionIDs, if any, limits results to messages mentioning one of these.
	MentionIDs []uint64
	// MentionsEveryone, if true, limits results to @everyone/@here messages.
	MentionsEveryone bool
	// Has lists content kinds that must all be present.
	Has Has
	// MinID and MaxID are exclusive snowflake bounds; 0 means unbounded.
	MinID, MaxID uint64
	// Pinned, if non-nil, limits results to pinned (true) or unpinned (false)
	// messages.
	Pinned *bool
	// SortBy and SortOrder choose the order; zero values mean newest first.
	SortBy    SortBy
	SortOrder SortOrder
	// Offset is the number of results to skip (0..MaxOffset).
	Offset int
	// Limit is the page size (1..MaxLimit); 0 means DefaultLimit.
	Limit int

	// AuthorNames, ChannelNames and MentionNames are from:, in: and
	// mentions: values given as names; Resolve turns them into IDs.
	AuthorNames, ChannelNames, MentionNames []string

	// nothing is set by Resolve when a name filter resolved to no IDs at
	// all, so the query matches nothing.
	nothing bool
}

// Hit is one matching message. The node loads the message by ID to build
// the response.
type Hit struct {
	// ID is the message snowflake.
	ID uint64
	// ChannelID is the channel the message is in, one of the readable set.
	ChannelID uint64
	// Score is the relevance score; 0 when sorting by timestamp.
	Score float64
}

// Result is one page of results.
type Result struct {
	// Total is the number of matching messages the searcher may read. When
	// Partial is true it is the number found before the search stopped.
	Total int
	// Hits is the requested page, in the requested order.
	Hits []Hit
	// Partial is true when the result may be incomplete: the query hit its
	// deadline, or the index is being rebuilt.
	Partial bool
}
