//go:build !purego

package codec

import (
	"os"
	"sync"
	"time"
)

//go:noescape
func ansLanes8(x *[ansLanes]uint32, st *[ansLanes]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32, emu bool) (int, int)

//go:noescape
func ansLanes16(x *[ansMaxLanes]uint32, st *[ansMaxLanes]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32, emu bool) (int, int)

// ansPermute holds, for every mask of lanes that renormalize, the index
// of each lane's word among the words the group reads.
var ansPermute = func() (t [256][8]uint32) {
	for m := range t {
		n := uint32(0)
		for l := range 8 {
			t[m][l] = n
			if m>>l&1 != 0 {
				n++
			}
		}
	}
	return t
}()

// lanesVec runs whole groups of d.lanes (8 or 16) symbols through the
// lanes with AVX2 when the machine has it, and returns how many symbols
// it did.
func (d *sliceDecoder) lanesVec(tabs *ansDecTables, etab []uint16, tq []uint8) int {
	L := d.lanes
	if !hasAVX2() || L != ansLanes && L != ansMaxLanes || len(etab) < L {
		return 0
	}
	groups := len(etab) / L
	_ = tq[groups*L-1]
	_ = d.words[d.wend+ansPad-1] // the padding a group may read
	var done int
	emu := useGatherEmu()
	if L == ansMaxLanes {
		d.wpos, done = ansLanes16(&d.x, &d.st, tabs, &etab[0], &tq[0], groups, &d.words[0], d.wpos, d.wend, &ansPermute, emu)
	} else {
		d.wpos, done = ansLanes8((*[ansLanes]uint32)(d.x[:]), (*[ansLanes]uint32)(d.st[:]), tabs, &etab[0], &tq[0], groups, &d.words[0], d.wpos, d.wend, &ansPermute, emu)
	}
	return done * L
}

//go:noescape
func ansRaw8(tq *uint8, rec *uint16, off *uint32, groups int, recon *[ansReconSize]float32, coef *float32, step float32, emu bool) int

// rawVec dequantizes whole groups of eight symbols with AVX2 when the
// machine has it, as long as they are trellis symbols without escapes
// of consecutive coefficients, and returns how many symbols it did.
func (d *sliceDecoder) rawVec(recon *[ansReconSize]float32, rec []uint16, off []uint32, tq []uint8, coef []float32, step float32) int {
	groups := len(off) / ansLanes
	if !hasAVX2() || groups == 0 {
		return 0
	}
	_, _ = rec[groups*ansLanes-1], tq[groups*ansLanes-1]
	return ansRaw8(&tq[0], &rec[0], &off[0], groups, recon, &coef[0], step, useGatherEmu()) * ansLanes
}

//go:noescape
func gatherProbe(tab *uint32, n int, emu bool) uint32

// GatherEnv is the environment variable that sets how the AVX2 entropy
// decoder reads its tables: "hw" with VPGATHERDD, "emu" with scalar
// loads; unset or anything else, it times both once and keeps the faster.
// Both give the same values.
const GatherEnv = "NTC_GATHER"

// The table reads of the AVX2 lanes: gatherAuto until the first decode
// times them (gatherOnce), then gatherHW or gatherEmu.
const (
	gatherAuto = iota
	gatherHW
	gatherEmu
)

var (
	gatherFromEnv = gatherModeFromEnv(os.Getenv(GatherEnv)) // gatherAuto unless NTC_GATHER says
	gatherMode    = gatherFromEnv
	gatherOnce    sync.Once
)

func gatherModeFromEnv(v string) int {
	switch v {
	case "hw":
		return gatherHW
	case "emu":
		return gatherEmu
	}
	return gatherAuto
}

// useGatherEmu reports whether the AVX2 lanes read their tables with
// scalar loads. VPGATHERDD is several times slower on some x86 cores
// than on others (microcoded on AMD before Zen 4, slowed by the Gather
// Data Sampling mitigation on several Intel generations), so unless
// NTC_GATHER says, the first call times both ways on a table in L1 and
// keeps the scalar loads only when they are clearly faster.
func useGatherEmu() bool {
	if gatherMode == gatherAuto {
		gatherOnce.Do(func() { gatherMode = probeGather() })
	}
	return gatherMode == gatherEmu
}

// probeGather times 512 rounds of each way of reading, five times
// alternately (about 50 µs in all), and returns gatherEmu when the
// scalar loads' best time is under 0.9 of the gathers'.
func probeGather() int {
	tab := make([]uint32, 5120)
	for i := range tab {
		tab[i] = uint32(i) * 2654435761
	}
	best := [2]time.Duration{1 << 62, 1 << 62}
	for range 5 {
		for v := range best {
			t := time.Now()
			gatherProbe(&tab[0], 512, v == 1)
			best[v] = min(best[v], time.Since(t))
		}
	}
	if best[1]*10 < best[0]*9 {
		return gatherEmu
	}
	return gatherHW
}

// setGatherMode sets the table reads of the AVX2 lanes (gatherHW or
// gatherEmu) and returns the previous mode, for tests that cover both.
func setGatherMode(m int) int {
	useGatherEmu() // run the probe now, so that it does not undo m later
	old := gatherMode
	gatherMode = m
	return old
}

// gatherModes returns the modes setGatherMode takes.
func gatherModes() []int { return []int{gatherHW, gatherEmu} }

// TableReads says how the AVX2 entropy decoder reads its tables on this
// machine, "gathers" or "scalar loads", with "(NTC_GATHER)" when the
// environment chose; "" where the AVX2 lanes do not run. It runs the
// probe if no decode has.
func TableReads() string {
	if !hasAVX2() {
		return ""
	}
	s := "gathers"
	if useGatherEmu() {
		s = "scalar loads"
	}
	if gatherFromEnv != gatherAuto {
		s += " (" + GatherEnv + ")"
	}
	return s
}
