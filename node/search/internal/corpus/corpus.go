// Package corpus generates a deterministic synthetic chat history and a
// matching query mix, for the search benchmarks. Message i is a pure
// function of the configuration and i, so queries can be drawn from real
// messages without keeping them in memory.
package corpus

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/node/search"
)

// Config describes a history. The zero value of a field means the default
// in parentheses.
type Config struct {
	Messages         int           // messages in all (1,000,000)
	Guilds           int           // guilds (1)
	ChannelsPerGuild int           // text channels per guild (50)
	Users            int           // distinct authors (10,000)
	Vocabulary       int           // distinct words, Zipf-distributed (50,000)
	Seed             uint64        // RNG seed (1)
	Start            time.Time     // time of the first message (2024-01-01 UTC)
	Span             time.Duration // time between first and last message (two years)
}

func (c *Config) defaults() {
	if c.Messages == 0 {
		c.Messages = 1_000_000
	}
	if c.Guilds == 0 {
		c.Guilds = 1
	}
	if c.ChannelsPerGuild == 0 {
		c.ChannelsPerGuild = 50
	}
	if c.Users == 0 {
		c.Users = 10_000
	}
	if c.Vocabulary == 0 {
		c.Vocabulary = 50_000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Span == 0 {
		c.Span = 2 * 365 * 24 * time.Hour
	}
}

// Corpus is a configured generator.
type Corpus struct {
	cfg   Config
	words []string
	cdf   []float64 // cumulative Zipf weights over words
}

// New builds the vocabulary for cfg.
func New(cfg Config) *Corpus {
	cfg.defaults()
	c := &Corpus{cfg: cfg}
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "bri", "sto", "fen", "dar", "wel", "gor", "nyx", "el", "an"}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	seen := make(map[string]bool)
	for len(c.words) < cfg.Vocabulary {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.words = append(c.words, w)
		}
	}
	c.cdf = make([]float64, len(c.words))
	sum := 0.0
	for i := range c.words {
		sum += 1 / math.Pow(float64(i+1), 1.07)
		c.cdf[i] = sum
	}
	for i := range c.cdf {
		c.cdf[i] /= sum
	}
	return c
}

// Len is the number of messages.
func (c *Corpus) Len() int { return c.cfg.Messages }

func (c *Corpus) word(rng *rand.Rand) string {
	x := rng.Float64()
	lo, hi := 0, len(c.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if c.cdf[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return c.words[lo]
}

// GuildID and ChannelID name the guilds and channels of the corpus.
func GuildID(g int) uint64       { return uint64(1_000 + g) }
func ChannelID(g, ch int) uint64 { return uint64(100_000 + g*1_000 + ch) }

// Channels returns the channel IDs of guild g.
func (c *Corpus) Channels(g int) []uint64 {
	out := make([]uint64, c.cfg.ChannelsPerGuild)
	for i := range out {
		out[i] = ChannelID(g, i)
	}
	return out
}

// Doc returns message i (0 <= i < Len). IDs increase with i.
func (c *Corpus) Doc(i int) search.Doc {
	rng := rand.New(rand.NewPCG(c.cfg.Seed, uint64(i)+1))
	t := c.cfg.Start.Add(time.Duration(float64(c.cfg.Span) * float64(i) / float64(c.cfg.Messages)))
	g := rng.IntN(c.cfg.Guilds)
	d := search.Doc{
		ID:        search.SnowflakeAt(t) | uint64(i&0x3fffff),
		GuildID:   GuildID(g),
		ChannelID: ChannelID(g, rng.IntN(c.cfg.ChannelsPerGuild)),
		AuthorID:  uint64(10_000_000 + rng.IntN(c.cfg.Users)),
	}
	n := 3 + rng.IntN(18)
	words := make([]string, n)
	for j := range words {
		words[j] = c.word(rng)
	}
	switch r := rng.IntN(100); {
	case r < 5:
		words = append(words, fmt.Sprintf("https://example.com/%d", i))
		d.Has |= search.HasLink | search.HasEmbed
	case r < 8:
		d.Has |= search.HasFile | search.HasImage
	}
	if rng.IntN(20) == 0 {
		d.Mentions = []uint64{uint64(10_000_000 + rng.IntN(c.cfg.Users))}
	}
	d.MentionsEveryone = rng.IntN(500) == 0
	d.Pinned = rng.IntN(1000) == 0
	d.Content = strings.Join(words, " ")
	return d
}

// Scan implements search.Source.
func (c *Corpus) Scan(ctx context.Context, fn func(search.Doc) error) error {
	for i := range c.cfg.Messages {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(c.Doc(i)); err != nil {
			return err
		}
	}
	return nil
}

// Count implements search.Source.
func (c *Corpus) Count(context.Context) (int, error) { return c.cfg.Messages, nil }

// Query kinds of the benchmark mix.
const (
	Term   = "term"   // one word from a message
	Words  = "words"  // two words from a message, any order
	Phrase = "phrase" // two adjacent words from a message, quoted
	Author = "author" // from:<@author> of a message
	Dated  = "dated"  // one word and during:<month of the message>
)

// Kinds lists the query kinds in mix order.
var Kinds = []string{Term, Words, Phrase, Author, Dated}

// BenchQuery is one query of the mix.
type BenchQuery struct {
	Kind     string
	Text     string
	GuildID  uint64
	Readable []uint64
}

// Queries returns n queries cycling through Kinds, each drawn from a random
// message so that it matches at least that message.
func (c *Corpus) Queries(n int, seed uint64) []BenchQuery {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]BenchQuery, 0, n)
	for k := 0; k < n; k++ {
		i := rng.IntN(c.cfg.Messages)
		d := c.Doc(i)
		words := strings.Fields(d.Content)
		if d.Has&search.HasLink != 0 {
			words = words[:len(words)-1]
		}
		g := int(d.GuildID - GuildID(0))
		q := BenchQuery{Kind: Kinds[k%len(Kinds)], GuildID: d.GuildID, Readable: c.Channels(g)}
		j := rng.IntN(len(words) - 1)
		switch q.Kind {
		case Term:
			q.Text = words[j]
		case Words:
			q.Text = words[j] + " " + words[rng.IntN(len(words))]
		case Phrase:
			q.Text = `"` + words[j] + " " + words[j+1] + `"`
		case Author:
			q.Text = fmt.Sprintf("from:<@%d>", d.AuthorID)
		case Dated:
			q.Text = words[j] + " during:" + search.SnowflakeTime(d.ID).Format("2006-01")
		}
		out = append(out, q)
	}
	return out
}
