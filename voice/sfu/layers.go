package sfu

import (
	"time"

	"github.com/pion/webrtc/v4"
)

const (
	// audioReserve is the downlink kept for each forwarded audio track.
	audioReserve = 64_000
	// layerStale is how long a layer may go without packets before the
	// allocator treats it as gone.
	layerStale = 1500 * time.Millisecond
	// upgradeEvery limits upward layer changes (VOICE-103).
	upgradeEvery = time.Second
)

// allocateLocked picks each video down track's layer for one subscriber
// from what it asked for, what the publisher sends and the subscriber's
// downlink estimate. A change requests a key frame on the new layer;
// downTrack.write switches when it arrives (VOICE-104).
func (s *SFU) allocateLocked(se *Session, now time.Time) {
	var video []*downTrack
	audio := 0
	for _, sl := range se.down {
		d := sl.cur.Load()
		if d == nil || !d.enabled.Load() {
			continue
		}
		if d.up.kind == webrtc.RTPCodecTypeVideo {
			video = append(video, d)
		} else {
			audio++
		}
	}
	if len(video) == 0 {
		return
	}
	budget := int64(-1) // unknown: no bandwidth limit
	if se.bwe != nil {
		budget = int64(se.bwe.GetTargetBitrate()) - int64(audio*audioReserve)
		if budget < 0 {
			budget = 0
		}
	}
	for _, d := range video {
		share := int64(-1)
		if budget >= 0 {
			share = budget / int64(len(video))
		}
		next := pickLayer(d.up, int(d.maxLayer.Load()), share, now)
		cur := int(d.target.Load())
		if next == cur || next < 0 || (next > cur && now.Sub(d.lastUpgrade) < upgradeEvery) {
			if d.awaitsKeyframe() {
				// The key frame asked for has not come (lost, or asked for
				// before the publisher's layer started): ask again.
				d.up.requestKeyframe(cur)
			}
			continue
		}
		if next > cur {
			d.lastUpgrade = now
		}
		d.target.Store(int32(next))
		d.up.requestKeyframe(next)
	}
}

// pickLayer returns the highest live layer not above maxLayer whose
// measured bitrate fits share (share < 0: no limit); if none fits, the
// lowest live layer; -1 if no layer is live.
func pickLayer(up *upTrack, maxLayer int, share int64, now time.Time) int {
	lowest := -1
	for l := 0; l < numLayers; l++ {
		if now.UnixNano()-up.lastSeen[l].Load() < int64(layerStale) {
			lowest = l
			break
		}
	}
	for l := min(maxLayer, numLayers-1); l >= 0; l-- {
		if now.UnixNano()-up.lastSeen[l].Load() >= int64(layerStale) {
			continue
		}
		if share < 0 || up.bitrate[l].Load() <= share {
			return l
		}
	}
	if maxLayer < 0 {
		return -1
	}
	return lowest
}
