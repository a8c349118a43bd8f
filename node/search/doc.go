// Package search is a node's full-text message search: a Bleve (scorch)
// index fed asynchronously, Discord's search filters in both their REST form
// and the text form typed into the client's search box, and self-repair
// against the store. The normative rules are in spec/search.md (SRCH-nnn).
//
// # Integration contract
//
// The node owns one Index per data directory:
//
//	ix, err := search.Open(filepath.Join(dataDir, "search"), search.Options{
//		Logger:     logger,
//		Registerer: prometheus.DefaultRegisterer,
//		Source:     storeSource, // implements search.Source
//	})
//	defer ix.Close()
//
// Writes. After the store commits a message create or edit, the node calls
// ix.Index(doc) with the message's current state; after a delete (or a bulk
// delete, or a channel or guild deletion, once per message) it calls
// ix.Delete(id). Pins and unpins are edits (Doc.Pinned). Both calls return at
// once: an owned goroutine batches the queue into the index, so sending a
// message never waits for indexing. Operations are idempotent; the latest
// call for an ID wins. Tests call ix.Flush(ctx) to wait until the queue is
// applied.
//
// Reads. GET /api/v10/guilds/{guild.id}/messages/search does:
//
//	q, err := search.FromParams(r.URL.Query())     // *QueryError → 400
//	q.GuildID = guildID                            // 0 only for DM channel search
//	q, err = q.Resolve(ctx, resolver)              // names → IDs
//	readable := the guild's channels where the user has VIEW_CHANNEL and
//	            READ_MESSAGE_HISTORY now (for DMs: the DM channel)
//	res, err := ix.Search(ctx, q, readable)        // *QueryError → 400
//
// then loads each res.Hits[i].ID from the store and answers
// {"total_results": res.Total, "messages": [[msg], ...]} (Discord's shape:
// each entry is an array whose one element is the hit), adding
// "partial": true when res.Partial. A hit whose message the store no longer
// has (a delete not yet applied) is skipped (SRCH-047). Any error for which
// errors.Is(err, search.ErrBadQuery) holds maps to 400 with Discord's form
// error body: code 50035, errors.<QueryError.Field>._errors[0] with code
// "SEARCH_" + upper(QueryError.Code) and QueryError.Msg (spec/search.md §6).
// Other errors are 500, except context errors (the client went away).
//
// Guild scope: GuildID names the guild, and results come only from that
// guild's channels in readable; GuildID 0 searches direct-message channels
// (messages indexed with GuildID 0) only. Search cannot run without the
// readable set: there is no value meaning "all channels", an empty set
// matches nothing, and every returned hit is checked against it again.
//
// Repair. Source is implemented over the store (Scan in ascending message
// ID). If the index was not closed cleanly, Open repairs it in the
// background from Source (progress in the log and the
// hearth_search_repair_progress_ratio gauge). `hearth admin reindex` calls
// ix.Rebuild(ctx, src, progress) on an open index and prints progress.
//
// Evaluation. Queries are answered from the segments' posting bitmaps
// (bitmap.go): counts are cardinalities, newest-first pages read message
// IDs only for a few days' worth of matches, and relevance scores each
// match from its postings. Message IDs (from the engine's document IDs),
// guilds and channels (doc values) are read a block at a time and kept per
// segment (segcache.go, bounded by Options.IDCacheSize). The index keeps no
// word positions: a phrase takes the documents holding all its words,
// narrowed by the pair terms of common words, and confirms the rest against
// each document's stored word sequence (phrase.go, commonwords.go).
//
// Resolver is implemented by the node over guild members (from:, mentions:)
// and channels (in:); the client usually sends IDs (<@id>, <#id>), which need
// no lookup.
package search
