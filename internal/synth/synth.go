// Package synth generates synthetic ViT tokens that imitate what real token
// dumps show, for benchmarks at dimensions no real data here covers (CLIP
// ViT-L/14 has 1024 dims and 577 tokens). Results on synthetic tokens are
// never to be reported as results on real ones.
//
// The generator draws, for each sample:
//   - a low-rank signal: tokens = mean + U z with a fixed random orthonormal
//     basis U of Rank columns and a power-law spectrum (component k has
//     standard deviation (k+1)^-Decay), plus small isotropic noise;
//   - spatial correlation: the latents z of the patch grid are a smooth
//     random field (a per-image latent shared by all patches plus a 2-D
//     first-order autoregressive field with coefficient Spatial);
//   - clusters: the per-image latent is drawn around one of Clusters
//     centres, as images of a few kinds would be;
//   - a few large-magnitude channels: Massive channels carry a large
//     offset (about 20x the typical value) in every token, as the
//     "massive activations" of real ViTs do;
//   - high-norm outlier tokens: Outliers patch tokens per sample get a norm
//     about 10x the others (the artefact tokens of large ViTs);
//   - a prefix (CLS) token drawn from the per-image latent.
//
// Output is deterministic for a given Config.
package synth

import (
	"math"
	"math/rand/v2"
)

// Config sets the shape and statistics of the generated tokens. Zero fields
// take the defaults of CLIPL.
type Config struct {
	Prefix, GridH, GridW, Dim int
	Rank                      int
	Decay                     float64
	Spatial                   float64
	Clusters                  int
	Massive                   int
	Outliers                  int
	Noise                     float64
	Seed                      uint64
}

// CLIPL imitates CLIP ViT-L/14 at 336 px: 1 CLS + 24x24 patches, 1024 dims.
var CLIPL = Config{Prefix: 1, GridH: 24, GridW: 24, Dim: 1024, Rank: 128, Decay: 0.6,
	Spatial: 0.7, Clusters: 16, Massive: 2, Outliers: 4, Noise: 0.05, Seed: 1}

// Generator produces samples. It is not safe for concurrent use.
type Generator struct {
	c       Config
	basis   []float32 // Rank x Dim, row k is component k
	sd      []float32 // per component
	mean    []float32 // Dim
	centres []float32 // Clusters x Rank
	massive []int
	r       *rand.Rand
	z       []float32 // tokens x Rank latents
}

// New returns a generator for c, filling zero fields from CLIPL.
func New(c Config) *Generator {
	d := CLIPL
	if c.Dim == 0 {
		c.Dim = d.Dim
	}
	if c.GridH == 0 || c.GridW == 0 {
		c.GridH, c.GridW = d.GridH, d.GridW
	}
	if c.Rank == 0 {
		c.Rank = min(d.Rank, c.Dim)
	}
	if c.Decay == 0 {
		c.Decay = d.Decay
	}
	if c.Clusters == 0 {
		c.Clusters = d.Clusters
	}
	if c.Noise == 0 {
		c.Noise = d.Noise
	}
	c.Rank = min(c.Rank, c.Dim)
	g := &Generator{c: c, r: rand.New(rand.NewPCG(c.Seed, 0x5eed))}
	g.basis = make([]float32, c.Rank*c.Dim)
	// Random near-orthonormal rows: Gaussian rows normalised; in high
	// dimension they are nearly orthogonal, which is all the tests need.
	for k := range c.Rank {
		row := g.basis[k*c.Dim : (k+1)*c.Dim]
		var n float64
		for i := range row {
			v := g.r.NormFloat64()
			row[i] = float32(v)
			n += v * v
		}
		s := float32(1 / math.Sqrt(n))
		for i := range row {
			row[i] *= s * float32(math.Sqrt(float64(c.Dim)))
		}
	}
	g.sd = make([]float32, c.Rank)
	for k := range g.sd {
		g.sd[k] = float32(math.Pow(float64(k+1), -c.Decay))
	}
	g.mean = make([]float32, c.Dim)
	for i := range g.mean {
		g.mean[i] = float32(0.1 * g.r.NormFloat64())
	}
	g.massive = g.r.Perm(c.Dim)[:min(c.Massive, c.Dim)]
	for _, ch := range g.massive {
		g.mean[ch] = float32(20 * (1 + g.r.Float64()))
		if g.r.IntN(2) == 0 {
			g.mean[ch] = -g.mean[ch]
		}
	}
	g.centres = make([]float32, c.Clusters*c.Rank)
	for i := range g.centres {
		g.centres[i] = float32(g.r.NormFloat64()) * g.sd[i%c.Rank]
	}
	g.z = make([]float32, g.Tokens()*c.Rank)
	return g
}

// Tokens returns the number of tokens per sample.
func (g *Generator) Tokens() int { return g.c.Prefix + g.c.GridH*g.c.GridW }

// Dim returns the number of dims per token.
func (g *Generator) Dim() int { return g.c.Dim }

// Sample fills dst (Tokens()*Dim() values) with the next sample.
func (g *Generator) Sample(dst []float32) {
	c, r := g.c, g.r
	rank := c.Rank
	centre := g.centres[r.IntN(c.Clusters)*rank:][:rank]
	global := make([]float32, rank)
	for k := range global {
		global[k] = centre[k] + 0.5*g.sd[k]*float32(r.NormFloat64())
	}
	// Prefix tokens: the image latent plus a little noise.
	for t := range c.Prefix {
		z := g.z[t*rank : (t+1)*rank]
		for k := range z {
			z[k] = 1.5*global[k] + 0.2*g.sd[k]*float32(r.NormFloat64())
		}
	}
	// Patch latents: global + AR(1) field over rows and columns.
	rho := float32(c.Spatial)
	innov := float32(math.Sqrt(math.Max(0, 1-float64(rho*rho))))
	for y := range c.GridH {
		for x := range c.GridW {
			t := c.Prefix + y*c.GridW + x
			z := g.z[t*rank : (t+1)*rank]
			for k := range z {
				var nb float32
				switch {
				case x > 0 && y > 0:
					nb = 0.5 * (g.z[(t-1)*rank+k] + g.z[(t-c.GridW)*rank+k] - 2*global[k])
				case x > 0:
					nb = g.z[(t-1)*rank+k] - global[k]
				case y > 0:
					nb = g.z[(t-c.GridW)*rank+k] - global[k]
				}
				z[k] = global[k] + rho*nb + innov*g.sd[k]*float32(r.NormFloat64())
			}
		}
	}
	// Tokens = mean + z U + noise.
	d := c.Dim
	for t := range g.Tokens() {
		out := dst[t*d : (t+1)*d]
		copy(out, g.mean)
		z := g.z[t*rank : (t+1)*rank]
		for k, zk := range z {
			row := g.basis[k*d : (k+1)*d]
			for i, b := range row {
				out[i] += zk * b
			}
		}
		for i := range out {
			out[i] += float32(c.Noise * r.NormFloat64())
		}
	}
	// High-norm outlier tokens.
	for range c.Outliers {
		if c.GridH*c.GridW == 0 {
			break
		}
		t := c.Prefix + r.IntN(c.GridH*c.GridW)
		out := dst[t*d : (t+1)*d]
		for i := range out {
			out[i] = g.mean[i] + 10*(out[i]-g.mean[i])
		}
	}
}
