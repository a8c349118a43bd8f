package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/hearth-chat/hearth/node/testnode"
)

// redirect sends discordgo's requests for discord.com to the test node.
type redirect struct{ target *url.URL }

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.target.Scheme, r.target.Host
	req.Host = r.target.Host
	return http.DefaultTransport.RoundTrip(req)
}

// TestDiscordgo drives a node with an unmodified Discord library: it logs in over the
// gateway, receives READY and MESSAGE_CREATE, and sends, edits and deletes messages.
func TestDiscordgo(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Heartbeat: 2 * time.Second})
	bot, human := n.Register(t, "botty"), n.Register(t, "human")
	var g guild
	human.Must("POST", "/guilds", map[string]string{"name": "Library Test"}, &g)
	var inv struct{ Code string }
	human.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	bot.Must("POST", "/invites/"+inv.Code, nil, nil)

	target, _ := url.Parse(n.URL)
	dg, err := discordgo.New("Bot " + bot.Token)
	if err != nil {
		t.Fatal(err)
	}
	dg.Client = &http.Client{Transport: redirect{target}, Timeout: 10 * time.Second}
	dg.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentMessageContent
	ready := make(chan *discordgo.Ready, 1)
	created := make(chan *discordgo.MessageCreate, 10)
	dg.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) { ready <- r })
	dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { created <- m })
	if err := dg.Open(); err != nil {
		t.Fatalf("discordgo Open: %v", err)
	}
	defer dg.Close()
	select {
	case r := <-ready:
		if r.User.ID != bot.UserID || len(r.Guilds) != 1 {
			t.Fatalf("READY user %s guilds %d", r.User.ID, len(r.Guilds))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no READY through discordgo")
	}

	human.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "ping"}, nil)
	select {
	case m := <-created:
		if m.Content != "ping" || m.Author.ID != human.UserID {
			t.Fatalf("MESSAGE_CREATE through discordgo: %+v", m.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no MESSAGE_CREATE through discordgo")
	}

	sent, err := dg.ChannelMessageSend(g.text(t), "pong")
	if err != nil {
		t.Fatalf("ChannelMessageSend: %v", err)
	}
	edited, err := dg.ChannelMessageEdit(g.text(t), sent.ID, "pong (edited)")
	if err != nil || edited.Content != "pong (edited)" || edited.EditedTimestamp == nil {
		t.Fatalf("ChannelMessageEdit: %+v %v", edited, err)
	}
	if err := dg.ChannelMessageDelete(g.text(t), sent.ID); err != nil {
		t.Fatalf("ChannelMessageDelete: %v", err)
	}
	msgs, err := dg.ChannelMessages(g.text(t), 10, "", "", "")
	if err != nil {
		t.Fatalf("ChannelMessages: %v", err)
	}
	for _, m := range msgs {
		if strings.HasPrefix(m.Content, "pong") {
			t.Fatal("deleted message still in history")
		}
	}
	if len(msgs) != 1 || msgs[0].Content != "ping" {
		t.Fatalf("history = %d messages", len(msgs))
	}
	ch, err := dg.Channel(g.text(t))
	if err != nil || ch.GuildID != g.ID {
		t.Fatalf("Channel: %+v %v", ch, err)
	}
}
