package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart size and resolution.
const (
	chartWidth  = 11 * vg.Inch
	chartHeight = 4.8 * vg.Inch
	chartDPI    = 144
)

// PlotFormat returns the chart format for a file name ("svg" or "png"), or
// ErrPlotFormat.
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	}
	return "", fmt.Errorf("%s: %w", path, ErrPlotFormat)
}

// WritePlot draws the rate-distortion chart of the report in the format
// ("svg" or "png"): two panels, SNR and mean cosine against bits per value,
// one line per codec (a single point for fixed-rate codecs), every point
// labelled with its row's name. Lossless rows (infinite SNR, cosine 1) have
// no place on these axes and are named in a note instead.
func WritePlot(w io.Writer, rep *Report, format string) error {
	var c vg.CanvasWriterTo
	switch format {
	case "svg":
		c = vgsvg.New(chartWidth, chartHeight)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))}
	default:
		return fmt.Errorf("%q: %w", format, ErrPlotFormat)
	}
	dc := draw.New(c)
	// White background: PNG is transparent otherwise.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	lossy, lossless := splitLossless(rep.Rows)
	snr, err := panel("SNR (dB) against bits per value", "SNR (dB)", lossy, func(r Row) float64 { return r.Quality.SNR }, false)
	if err != nil {
		return err
	}
	cos, err := panel("Mean cosine against bits per value", "mean cosine per token (log scale in 1 - cos)", lossy, func(r Row) float64 { return 1 - r.Quality.CosMean }, true)
	if err != nil {
		return err
	}

	title := textStyle(13, draw.XCenter, draw.YTop)
	note := textStyle(9, draw.XLeft, draw.YBottom)
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - 6}, chartTitle(rep))
	if len(lossless) > 0 {
		dc.FillText(note, vg.Point{X: dc.Min.X + 8, Y: dc.Min.Y + 6},
			"Not drawn, lossless (SNR infinite, cosine 1): "+strings.Join(lossless, ", ")+".")
	}
	key := textStyle(9, draw.XRight, draw.YBottom)
	dc.FillText(key, vg.Point{X: dc.Max.X - 8, Y: dc.Min.Y + 6},
		"Labels: fixed-rate codec (file ratio); rate-controlled codec@target.")
	area := draw.Crop(dc, 4, -8, 22, -28)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: 24}
	cv := plot.Align([][]*plot.Plot{{snr, cos}}, tiles, area)
	snr.Draw(cv[0][0])
	cos.Draw(cv[0][1])
	_, err = c.WriteTo(w)
	return err
}

func chartTitle(rep *Report) string {
	in := rep.Input
	var names []string
	for _, f := range in.Files {
		names = append(names, filepath.Base(f))
	}
	what := strings.Join(names, ", ")
	if in.Note != "" {
		what = in.Note
	}
	if len(what) > 90 {
		what = "..." + what[len(what)-87:]
	}
	shape := ""
	if len(in.Shape) == 3 {
		shape = fmt.Sprintf(", %d x %d x %d", in.Shape[0], in.Shape[1], in.Shape[2])
	}
	return fmt.Sprintf("Rate-distortion on %s%s", what, shape)
}

// splitLossless returns the rows with finite SNR, and the labels of the
// rest.
func splitLossless(rows []Row) (lossy []Row, lossless []string) {
	for _, r := range rows {
		if math.IsInf(r.Quality.SNR, 1) || r.Quality.CosMean >= 1 {
			lossless = append(lossless, pointLabel(r))
			continue
		}
		if math.IsNaN(r.Quality.SNR) || math.IsInf(r.Quality.SNR, 0) || r.BitsPerValue <= 0 {
			continue
		}
		lossy = append(lossy, r)
	}
	return lossy, lossless
}

func textStyle(size vg.Length, x draw.XAlignment, y draw.YAlignment) text.Style {
	return text.Style{
		Color: color.Black, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler,
		XAlign: x, YAlign: y,
	}
}

// panel makes one chart: y(row) against bits per value, a line and labels
// per codec. gap means y is 1 - cosine, drawn on an inverted log scale
// labelled in cosine, so that near-1 cosines spread out and better is up.
func panel(title, ylabel string, rows []Row, y func(Row) float64, gap bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 11
	p.X.Label.Text = "bits per value (8 x file bytes / values)"
	p.Y.Label.Text = ylabel
	p.X.Min = 0
	p.Add(plotter.NewGrid())
	if gap {
		p.Y.Scale = plot.InvertedScale{Normalizer: plot.LogScale{}}
		p.Y.Tick.Marker = cosineTicks{}
	}
	var codecs []string
	for _, r := range rows {
		if !slices.Contains(codecs, r.Codec) {
			codecs = append(codecs, r.Codec)
		}
	}
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for ci, name := range codecs {
		var xys plotter.XYs
		var labels []string
		for _, r := range rows {
			if r.Codec != name {
				continue
			}
			v := y(r)
			if gap {
				v = max(v, 1e-9) // log scale: no zero
			}
			xys = append(xys, plotter.XY{X: r.BitsPerValue, Y: v})
			labels = append(labels, pointLabel(r))
			ymin, ymax = min(ymin, v), max(ymax, v)
		}
		order := make([]int, len(xys))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmpFloat(xys[a].X, xys[b].X) })
		sx, sl := make(plotter.XYs, len(xys)), make([]string, len(xys))
		for k, i := range order {
			sx[k], sl[k] = xys[i], labels[i]
		}
		col := codecColor(ci)
		if len(sx) > 1 {
			line, err := plotter.NewLine(sx)
			if err != nil {
				return nil, err
			}
			line.Color, line.Width = col, vg.Points(1.5)
			p.Add(line)
		}
		pts, err := plotter.NewScatter(sx)
		if err != nil {
			return nil, err
		}
		pts.Color, pts.Shape, pts.Radius = col, draw.CircleGlyph{}, vg.Points(3.5)
		p.Add(pts)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: sx, Labels: sl})
		if err != nil {
			return nil, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i] = textStyle(9, draw.XLeft, draw.YCenter)
			lb.TextStyle[i].Color = col
		}
		lb.Offset = vg.Point{X: 6}
		p.Add(lb)
	}
	if len(rows) > 0 {
		pad := 0.08 * (ymax - ymin)
		if gap {
			p.Y.Min, p.Y.Max = ymin/2, ymax*2
		} else {
			p.Y.Min, p.Y.Max = ymin-pad-0.5, ymax+pad+0.5
		}
	}
	p.X.Max = max(p.X.Max*1.15, 1) // room for the labels on the right
	p.X.Tick.Marker = bitTicks{}
	return p, nil
}

// pointLabel names a point: the codec and its file ratio for fixed-rate
// codecs ("int8 (1.98x)"), the codec and its target for the others
// ("ntc@8x").
func pointLabel(r Row) string {
	if r.TargetRatio > 0 || r.TargetQuality != "" {
		return r.Label()
	}
	return fmt.Sprintf("%s (%.2fx)", r.Codec, r.Ratio)
}

// bitTicks marks whole bits per value, labelling every one up to 8 bits
// and every other one beyond.
type bitTicks struct{}

func (bitTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	if hi-lo > 10 {
		step = 2
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
	}
	return ticks
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// codecColor returns distinct, print-safe colours (Okabe-Ito).
func codecColor(i int) color.Color {
	pal := []color.RGBA{
		{0, 114, 178, 255},   // blue
		{213, 94, 0, 255},    // vermillion
		{0, 158, 115, 255},   // green
		{204, 121, 167, 255}, // purple
		{230, 159, 0, 255},   // orange
		{86, 180, 233, 255},  // sky blue
		{0, 0, 0, 255},       // black
	}
	return pal[i%len(pal)]
}

// cosineTicks marks an axis of 1 - cosine with cosine values: 0.9, 0.99,
// 0.999, ...
type cosineTicks struct{}

func (cosineTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := -12; e <= 0; e++ {
		g := math.Pow(10, float64(e))
		if g >= lo && g <= hi {
			ticks = append(ticks, plot.Tick{Value: g, Label: cosLabel(e)})
		}
		for m := 2.0; m < 10; m++ {
			if v := m * g; v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	if len(ticks) < 2 { // a narrow range: label its ends
		ticks = []plot.Tick{{Value: lo, Label: fmt.Sprintf("%.6g", 1-lo)}, {Value: hi, Label: fmt.Sprintf("%.6g", 1-hi)}}
	}
	return ticks
}

// cosLabel returns 1 - 10^e as a decimal: e = -3 gives "0.999".
func cosLabel(e int) string {
	if e >= 0 {
		return "0"
	}
	return "0." + strings.Repeat("9", -e)
}
