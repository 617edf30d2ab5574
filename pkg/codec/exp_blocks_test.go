package codec

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// TestBlockStepsExperiment measures a step per sample and 4x4 block, from
// each sample's own gradient fields, in the codec itself: the rANS tables
// follow each block's step (its step code shifts the block's sigma/step
// buckets and the set of coded classes), as a payload with a 4-bit code
// per block and sample would code it. Nothing decodes such a payload: the
// encoder's reconstruction is what a decoder that read the codes would
// produce (the harness checks that with every code 0 it writes Encode's
// payload byte for byte and Decode's values bit for bit).
//
// Set NTC_EXP_BLOCKS to a folder holding Ma.npy, Ga.npy (task_metric.py
// fisher on samples 0-95 of the dev file, G with --fields) and Mb.npy,
// Gb.npy (samples 96-191). Fold a fits the model (metric Ma, fields Ga,
// the whole file) and codes samples 96-191, with block steps from Gb;
// fold b the other way round. NTC_EXP_RATIO (16), NTC_EXP_BLEND (the
// fields' share in the block weights, 0.3), NTC_EXP_DC=1 (the block's
// code also on its DC-group entries), NTC_EXP_SAMPLE=1 (one step per
// sample instead, from its total field energy against all samples', on
// all its coefficients), NTC_EXP_CODES=F.npy (one given code per sample
// of the whole file, [N, 1, 1], on all its coefficients). The
// reconstructions go to
// blocks_{a,b}_{base,steps,over}.npy in the folder, all 192 samples (the
// others as the original), for scripts/task_eval.py --samples: "steps"
// is the block steps' payload at the finest step no larger than the one
// step's, "over" the next finer step's (larger): the figures at equal
// size lie between them.
func TestBlockStepsExperiment(t *testing.T) {
	dir := os.Getenv("NTC_EXP_BLOCKS")
	if dir == "" {
		t.Skip("set NTC_EXP_BLOCKS=DIR to run")
	}
	ratio, blend := envFloat(t, "NTC_EXP_RATIO", 16), envFloat(t, "NTC_EXP_BLEND", 0.3)
	dcToo := os.Getenv("NTC_EXP_DC") != ""
	perSample := os.Getenv("NTC_EXP_SAMPLE") != ""
	if perSample {
		dcToo = true
	}
	data, n := loadShared(t, "deit_tiny_block10_dev.npy")
	l := deitLayout
	v := l.Values()
	for _, fold := range []struct{ name, m, g, held string }{{"a", "Ma", "Ga", "Gb"}, {"b", "Mb", "Gb", "Ga"}} {
		m, shape, err := tensorio.ReadAllFloat64(filepath.Join(dir, fold.m+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		tm, err := NewTaskMetric(m, shape[0], MetricMatrix)
		if err != nil {
			t.Fatal(err)
		}
		g, gs := loadNPY(t, filepath.Join(dir, fold.g+".npy"))
		if err := tm.SetFields(g, gs[0], gs[1]); err != nil {
			t.Fatal(err)
		}
		cd, err := newNTC(l, data, n, Options{Ratio: ratio, ChunkSamples: 55, TaskMetric: tm})
		if err != nil {
			t.Fatal(err)
		}
		c := cd.(*ntcCodec)
		lo := n / 2
		if fold.name == "b" {
			lo = 0
		}
		src := data[lo*v : (lo+n/2)*v]
		rec := make([]float32, len(src))
		pay, size0 := c.blockStepPayload(src, n/2, nil, 0, false, rec)
		ref, err := c.Encode(nil, src, n/2)
		if err != nil {
			t.Fatal(err)
		}
		dec := make([]float32, len(src))
		if err := c.Decode(dec, ref, n/2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pay, ref) {
			t.Fatalf("fold %s: the harness's payload (%d bytes) is not Encode's (%d)", fold.name, len(pay), len(ref))
		}
		for i := range dec {
			if math.Float32bits(dec[i]) != math.Float32bits(rec[i]) {
				t.Fatalf("fold %s: the harness's value %d is %g, Decode's %g", fold.name, i, rec[i], dec[i])
			}
		}
		writeExp(t, filepath.Join(dir, "blocks_"+fold.name+"_base.npy"), data, n, lo, rec)
		snr0 := metrics.Compare(src, rec, l.Dim).SNR

		hg, hs := loadNPY(t, filepath.Join(dir, fold.held+".npy"))
		codes := c.blockCodes(fieldEnergy(hg, hs, n/2), n/2, blend)
		if perSample {
			codes = c.sampleCodes(fieldEnergy(hg, hs, n/2), n/2, blend)
		}
		if p := os.Getenv("NTC_EXP_CODES"); p != "" {
			// Given codes per sample of the whole file, [N, 1, 1].
			v, _ := loadNPY(t, p)
			nb := len(c.blocks)
			for s := range n / 2 {
				for bi := range nb {
					codes[s*nb+bi] = int8(v[lo+s])
				}
			}
			dcToo = true
		}
		size := func(d int32) int { _, s := c.blockStepPayload(src, n/2, codes, d, dcToo, nil); return s }
		// The finest step whose payload is no larger, and the next finer:
		// the size jumps where the classes' buckets change (every 32 step
		// codes, the sigma codes' resolution, all classes at once), so the
		// two bracket size0 and the head's figures are read between them.
		a, b := int32(-512), int32(512)
		for b-a > 1 {
			if mid := (a + b) / 2; size(mid) <= size0 {
				b = mid
			} else {
				a = mid
			}
		}
		_, over := c.blockStepPayload(src, n/2, codes, b-1, dcToo, rec)
		writeExp(t, filepath.Join(dir, "blocks_"+fold.name+"_over.npy"), data, n, lo, rec)
		snrOver := metrics.Compare(src, rec, l.Dim).SNR
		_, size1 := c.blockStepPayload(src, n/2, codes, b, dcToo, rec)
		writeExp(t, filepath.Join(dir, "blocks_"+fold.name+"_steps.npy"), data, n, lo, rec)
		fmt.Printf("fold %s, ratio %g, blend %g, dc %v: one step %d bytes, SNR %.3f; block steps %d bytes (step code %+d), SNR %.3f; %d bytes (%+d), SNR %.3f\n",
			fold.name, ratio, blend, dcToo, size0, snr0, size1, b, metrics.Compare(src, rec, l.Dim).SNR, over, b-1, snrOver)
	}
}

func envFloat(t *testing.T, name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// fieldEnergy returns E|g_t|^2 per sample and grid token of fields [n *
// draws, grid tokens, D], sample-major.
func fieldEnergy(g []float32, shape []int, n int) []float64 {
	draws, gt, d := shape[0]/n, shape[1], shape[2]
	w := make([]float64, n*gt)
	for f := range n * draws {
		for t := range gt {
			e := 0.0
			for _, a := range g[(f*gt+t)*d:][:d] {
				e += float64(a) * float64(a)
			}
			w[f/draws*gt+t] += e
		}
	}
	return w
}

// blockCodes returns a step code per sample and block, in quarter
// octaves within [-8, 7], from per grid-token weights w [n, grid tokens]:
// the block's mean weight over the sample's mean, blended with 1, to the
// power -1/2, centred on the sample's mean code (as
// scripts/proto_block_steps.py sets them).
func (c *ntcCodec) blockCodes(w []float64, n int, blend float64) []int8 {
	l := c.layout
	g, nb := l.GridH*l.GridW, len(c.blocks)
	codes := make([]int8, n*nb)
	bw, cs := make([]float64, nb), make([]float64, nb)
	for s := range n {
		mean := 0.0
		for bi := range c.blocks {
			b := &c.blocks[bi]
			sum := 0.0
			for py := range int(b.bh) {
				for px := range int(b.bw) {
					sum += w[s*g+int(b.tok[py*blockSide+px])-l.Prefix]
				}
			}
			bw[bi] = sum / float64(int(b.bh)*int(b.bw))
			mean += bw[bi] / float64(nb)
		}
		tot := 0.0
		for bi := range nb {
			x := (1 - blend) + blend*bw[bi]/max(mean, 1e-300)
			cs[bi] = math.Max(-8, math.Min(7, math.Round(-2*math.Log2(x))))
			tot += cs[bi]
		}
		mc := math.Round(tot / float64(nb))
		for bi := range nb {
			codes[s*nb+bi] = int8(math.Max(-8, math.Min(7, cs[bi]-mc)))
		}
	}
	return codes
}

// sampleCodes returns blockCodes' codes for one step per sample: every
// block of sample s gets the code of the sample's total weight over the
// mean of all samples'.
func (c *ntcCodec) sampleCodes(w []float64, n int, blend float64) []int8 {
	g, nb := c.layout.GridH*c.layout.GridW, len(c.blocks)
	tot := make([]float64, n)
	mean := 0.0
	for s := range n {
		for _, x := range w[s*g : (s+1)*g] {
			tot[s] += x
		}
		mean += tot[s] / float64(n)
	}
	cs := make([]float64, n)
	avg := 0.0
	for s := range n {
		cs[s] = math.Max(-8, math.Min(7, math.Round(-2*math.Log2((1-blend)+blend*tot[s]/max(mean, 1e-300)))))
		avg += cs[s] / float64(n)
	}
	codes := make([]int8, n*nb)
	for s := range n {
		for bi := range nb {
			codes[s*nb+bi] = int8(math.Max(-8, math.Min(7, cs[s]-math.Round(avg))))
		}
	}
	return codes
}

// blockStepPayload codes n samples as a version 6 payload would, block bi
// of sample s at step code c.stepCode+delta+64*codes[s*nb+bi] (its AC
// entries; its DC-group entries too when dcToo), and returns the payload
// and its size with 4 bits per block and sample when codes is not nil.
// With dst it also reconstructs the samples into it.
func (c *ntcCodec) blockStepPayload(src []float32, n int, codes []int8, delta int32, dcToo bool, dst []float32) ([]byte, int) {
	l := c.layout
	nb := len(c.blocks)
	outl := c.outliers(src, n)
	cs := c.transform(c.fillOutliers(src, n, outl), n)
	base := c.stepCode + delta
	type plan struct {
		pl  []planEntry
		idx [][]int32
	}
	plans := map[int8]plan{}
	planOf := func(code int8) plan {
		p, ok := plans[code]
		if !ok {
			pl := c.plan(base + 64*int32(code))
			p = plan{pl, c.shapeIndex(pl)}
			plans[code] = p
		}
		return p
	}
	codeOf := func(s, bi int) int8 {
		if codes == nil {
			return 0
		}
		return codes[s*nb+bi]
	}
	spp := c.slicesPerSample()
	lanes := c.lanesFor(planOf(0).pl, spp)
	lambda := float32(c.lambda) / 256
	pb := c.plainFrom()
	ds := &dqScratch{lb: trellisBits(lambda, c.acost, pb), pb: pb}
	out := appendHead6(nil, base, spp, lanes)
	pidx := c.prefixIndex(n)
	var e sliceEncoder
	sc := c.scratch()
	defer c.bufs.Put(sc)
	per := blockSize * c.k
	for s := range n {
		// The sample's own plan: each block's DC-group entries, then its
		// AC entries, at the block's step.
		var pl []planEntry
		var steps []float32
		idx := make([][]int32, nb)
		for bi := range nb {
			code := codeOf(s, bi)
			for _, ac := range []bool{false, true} {
				p, st := planOf(code), stepOf(base+64*int32(code))
				if !ac && !dcToo {
					p, st = planOf(0), stepOf(base)
				}
				for _, i := range p.idx[bi] {
					if p.pl[i].cls < blockSize == ac {
						idx[bi] = append(idx[bi], int32(len(pl)))
						pl, steps = append(pl, p.pl[i]), append(steps, st)
					}
				}
			}
		}
		P := len(pl)
		sym := make([]int32, nb*P)
		for j := range spp {
			ds.reset()
			for bi := j * nb / spp; bi < (j+1)*nb/spp; bi++ {
				coef := cs.block(s, bi)
				for _, i := range idx[bi] {
					pe := &pl[i]
					ds.push(coef[int(pe.u)*cs.stride+int(pe.k)]/steps[i], pe.bucket, int32(bi*P)+i)
				}
			}
			ds.trellis(lanes, lambda, c.acost, sym)
		}
		out, outl = c.appendTokenRows(out, src, s, pidx[s*l.Prefix:(s+1)*l.Prefix], outl)
		if spp > 0 {
			out = e.encodeSlices(out, pl, pb, sym, idx, nb, spp, lanes, c.encTables())
		}
		if dst != nil {
			clear(sc.coef)
			walkSymbols(pl, pb, sym, idx, nb, 1, spp, lanes, func(_, bi int, pe *planEntry, qz uint32, v int32) {
				if v != 0 {
					st := stepOf(base)
					if pe.cls < blockSize || dcToo {
						st = stepOf(base + 64*int32(codeOf(s, bi)))
					}
					sc.coef[bi*per+int(pe.u)*c.k+int(pe.k)] = dequant6(v, qz, c.recon6, pe.bucket, st, pb)
				}
			})
			c.synthesize(dst[s*l.Tokens*l.Dim:][:l.Tokens*l.Dim], sc)
		}
	}
	if dst != nil {
		c.unpackPrefix(dst, n, c.appendPrefix(nil, src, pidx))
		o := c.outliers(src, n)
		unpackRows(dst, l.Dim, o, appendRows(nil, src, l.Dim, o))
	}
	size := len(out)
	if codes != nil {
		size += n * ((4*nb + 7) / 8)
	}
	return out, size
}

// writeExp writes the n samples of data with rec in place of samples
// lo.. as a float32 .npy file.
func writeExp(t *testing.T, path string, data []float32, n, lo int, rec []float32) {
	l := deitLayout
	v := l.Values()
	w, err := tensorio.Create(path, tensorio.Float32, n, l.Tokens, l.Dim, tensorio.WithReplace(true))
	if err != nil {
		t.Fatal(err)
	}
	for s := range n {
		x := data[s*v : (s+1)*v]
		if s >= lo && (s-lo)*v < len(rec) {
			x = rec[(s-lo)*v : (s-lo+1)*v]
		}
		if err := w.WriteSample(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
