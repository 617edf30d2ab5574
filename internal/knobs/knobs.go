// Package knobs holds settings that force choices the encoders would
// otherwise make from the data, so that tests (of any package of the
// module) can cover every form a format allows with small inputs. Nothing
// outside tests sets them; the zero value of each leaves the choice to the
// encoder. They are not safe to change while an encode runs.
package knobs

// ANSLanes, when not 0, is the number of rANS lanes per slice (1, 8 or 16)
// of the learned codec's payloads (pkg/codec, payload version 6), instead
// of the choice by slice size.
var ANSLanes int
