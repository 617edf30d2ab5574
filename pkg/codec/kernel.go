package codec

// axpyRows accumulates out[j] += sum_i a[i] * m[i*stride+j] for j <
// len(out), over the len(a) rows of m, in the order i = 0, 1, ... for every
// j. Products and sums are rounded to float32 one by one (no fused
// multiply-add), so every implementation, vector or not, gives
// bit-identical results: the encoder relies on it for deterministic output.
func axpyRows(out, a, m []float32, stride int) {
	if len(a) == 0 || len(out) == 0 {
		return
	}
	_ = m[(len(a)-1)*stride+len(out)-1]
	if axpyRowsAsm(out, a, m, stride) {
		return
	}
	axpyRowsGo(out, a, m, stride)
}

// axpyRowsFast computes what axpyRows does but may fuse multiply-adds, so
// its results may differ in the last bit between machines. Decoding uses
// it: decoded values need not be bit-identical across CPUs, encoded files
// must be.
func axpyRowsFast(out, a, m []float32, stride int) {
	if len(a) == 0 || len(out) == 0 {
		return
	}
	_ = m[(len(a)-1)*stride+len(out)-1]
	if axpyRowsFastAsm(out, a, m, stride) {
		return
	}
	axpyRowsGo(out, a, m, stride)
}

// axpyRowsGo is the portable kernel.
func axpyRowsGo(out, a, m []float32, stride int) {
	w := len(out)
	for i, ai := range a {
		row := m[i*stride : i*stride+w]
		j := 0
		for ; j+4 <= w; j += 4 {
			r := row[j : j+4 : j+4]
			o := out[j : j+4 : j+4]
			o[0] = float32(o[0] + float32(ai*r[0]))
			o[1] = float32(o[1] + float32(ai*r[1]))
			o[2] = float32(o[2] + float32(ai*r[2]))
			o[3] = float32(o[3] + float32(ai*r[3]))
		}
		for ; j < w; j++ {
			out[j] = float32(out[j] + float32(ai*row[j]))
		}
	}
}
