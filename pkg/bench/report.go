package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
)

// column is one figure of a row, in the order of JSON keys and CSV columns.
type column struct {
	key string
	get func(r *Row) any // string, bool, int, int64 or float64
}

var columns = []column{
	{"codec", func(r *Row) any { return r.Codec }},
	{"target_ratio", func(r *Row) any {
		if r.TargetRatio == 0 {
			return math.NaN() // null: fixed rate
		}
		return r.TargetRatio
	}},
	{"target_quality", func(r *Row) any {
		if r.TargetQuality == "" {
			return math.NaN() // null: a ratio target or none
		}
		return r.TargetQuality
	}},
	{"lossless", func(r *Row) any { return r.Lossless }},
	{"ratio", func(r *Row) any { return r.Ratio }},
	{"bits_per_value", func(r *Row) any { return r.BitsPerValue }},
	{"file_bytes", func(r *Row) any { return r.FileBytes }},
	{"model_bytes", func(r *Row) any { return r.ModelBytes }},
	{"chunks", func(r *Row) any { return r.Chunks }},
	{"encode_mbps", func(r *Row) any { return r.EncodeMBps }},
	{"fit_s", func(r *Row) any {
		if r.FitSeconds == 0 {
			return math.NaN() // null: no model to fit
		}
		return r.FitSeconds
	}},
	{"decode_mbps", func(r *Row) any { return r.DecodeMBps }},
	{"decode_p50_ms", func(r *Row) any { return r.DecodeP50ms }},
	{"decode_p99_ms", func(r *Row) any { return r.DecodeP99ms }},
	{"sample_p50_ms", func(r *Row) any { return r.SampleP50ms }},
	{"sample_p99_ms", func(r *Row) any { return r.SampleP99ms }},
	{"snr_db", func(r *Row) any { return r.Quality.SNR }},
	{"nmse", func(r *Row) any { return r.Quality.NMSE }},
	{"cos_mean", func(r *Row) any { return r.Quality.CosMean }},
	{"cos_p1", func(r *Row) any { return r.Quality.CosP1 }},
	{"cos_min", func(r *Row) any { return r.Quality.CosMin }},
	{"max_abs_err", func(r *Row) any { return r.Quality.MaxAbsErr }},
	{"nn_top1", func(r *Row) any { return r.NNTop1 }},
	{"nn_top5", func(r *Row) any { return r.NNTop5 }},
	{"task_snr_db", func(r *Row) any { return r.TaskSNR }},
}

// Columns lists the keys of a row in JSON and the columns of WriteCSV, in
// order.
func Columns() []string {
	keys := make([]string, len(columns))
	for i, c := range columns {
		keys[i] = c.key
	}
	return keys
}

// MarshalJSON writes the row as an object with the keys of Columns, in
// that order. Non-finite figures are null: the SNR of a lossless codec
// (+Inf), the target ratio of a fixed-rate codec, the fit time of a codec
// without a model, the nearest-neighbour agreement of a single sample;
// so is an absent quality target.
func (r Row) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.key)
		b.Write(k)
		b.WriteByte(':')
		v := c.get(&r)
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			v = nil
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// WriteCSV writes a header line with Columns and one line per row. Numbers
// are written in full precision; an infinite SNR is "inf", and the figures
// that JSON writes as null are empty.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns()); err != nil {
		return err
	}
	rec := make([]string, len(columns))
	for i := range rows {
		for k, c := range columns {
			rec[k] = csvValue(c.get(&rows[i]))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return ""
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return ""
}
