// Package media stores, serves and federates message attachments, avatars
// and guild icons.
//
// Blobs are content-addressed: named by the SHA-256 of their bytes under
// <dir>/blobs/<first two hex digits>/<hash>, written through a temporary
// file that is fsynced and renamed (a truncated upload leaves nothing), and
// stored once however often they are uploaded. An index in Badger (key
// prefix "m/") holds each blob's size, detected content type, image
// dimensions and thumbnail state, which owners are charged for it, and each
// owner's usage against a quota. The wire rules are in spec/media.md.
//
// # Integration contract
//
// The node wires the package in as follows.
//
// Start-up: open the store under the data dir with the node's Badger DB
// (opened with SyncWrites) and, once federation runs, its Fetcher; close it
// on shutdown, before the DB:
//
//	ms, err := media.Open(filepath.Join(dataDir, "media"), media.Options{
//		DB: db, Fetcher: fed, Logger: log, // zero fields take defaults
//	})
//	defer ms.Close()
//
// HTTP: mount the download handler on the public listener, outside
// /api/v10 and without the API's token check (the signed URL is the
// authorisation):
//
//	h := ms.Handler()
//	mux.Handle("GET /attachments/", h)
//	mux.Handle("GET /thumbnails/", h)
//
// Creating a message (POST /api/v10/channels/{id}/messages): when the
// request's Content-Type is multipart/form-data, after authenticating the
// user and checking ATTACH_FILES, call
//
//	payload, files, err := ms.ParseMessageUpload(r, userID, media.UploadLimits{})
//
// and answer errors with media.StatusCode(err) (413 for size and quota, 400
// for malformed uploads; Discord's JSON error body is the API's business).
// payload is the JSON body that a non-multipart request would have sent;
// its attachments[].id refers to files[i].Index. Store, with the message,
// each file's Hash, Size, ContentType, Width, Height and Filename (or the
// filename payload_json gives, passed through SanitizeFilename). If the
// message is not created after all, call ms.Abandon(userID, files).
//
// Rendering a message: build each attachment object afresh with
//
//	ms.Attachment(publicBaseURL, attachmentSnowflake, filename, blob, 24*time.Hour)
//
// which signs url and proxy_url; the signature expires, so never store
// URLs, only hashes. Avatars and guild icons are blobs uploaded with Put
// (owner: the user) and served through SignURL the same way.
//
// Federation: an event carries, per attachment, the hash (64 hex digits),
// size, filename and declared content type and dimensions (spec/media.md).
// When the node accepts such an event it calls
//
//	ms.AddRemote(hash, size, originNode)
//
// and renders the attachment from the event's fields. The first download
// or thumbnail request fetches the bytes through Options.Fetcher, verifies
// size and hash, and caches them; the federation layer's Fetcher serves
// this node's blobs to peers with OpenBlob (after checking the peer may
// see a message that references the hash).
//
// Garbage collection: periodically (say hourly) call
//
//	ms.GC(ctx, func(h media.Hash) bool { return store.HashReferenced(h) })
//
// where the callback says whether any stored message, avatar or icon uses
// the hash. Blobs younger than Options.GCGrace are kept regardless, so an
// upload whose message is still being created is safe.
package media
