//go:build !purego

package codec

//go:noescape
func ansLanes8(x *[ansLanes]uint32, st *[ansLanes]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32) (int, int)

//go:noescape
func ansLanes16(x *[ansMaxLanes]uint32, st *[ansMaxLanes]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32) (int, int)

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
	if L == ansMaxLanes {
		d.wpos, done = ansLanes16(&d.x, &d.st, tabs, &etab[0], &tq[0], groups, &d.words[0], d.wpos, d.wend, &ansPermute)
	} else {
		d.wpos, done = ansLanes8((*[ansLanes]uint32)(d.x[:]), (*[ansLanes]uint32)(d.st[:]), tabs, &etab[0], &tq[0], groups, &d.words[0], d.wpos, d.wend, &ansPermute)
	}
	return done * L
}

//go:noescape
func ansRaw8(tq *uint8, rec *uint16, off *uint32, groups int, recon *[ansReconSize]float32, coef *float32, step float32) int

// rawVec dequantizes whole groups of eight symbols with AVX2 when the
// machine has it, as long as they are trellis symbols without escapes
// of consecutive coefficients, and returns how many symbols it did.
func (d *sliceDecoder) rawVec(recon *[ansReconSize]float32, rec []uint16, off []uint32, tq []uint8, coef []float32, step float32) int {
	groups := len(off) / ansLanes
	if !hasAVX2() || groups == 0 {
		return 0
	}
	_, _ = rec[groups*ansLanes-1], tq[groups*ansLanes-1]
	return ansRaw8(&tq[0], &rec[0], &off[0], groups, recon, &coef[0], step) * ansLanes
}
