package bench_test

import (
	"fmt"

	"github.com/ntc-project/ntc/pkg/bench"
)

// Five samples' mean-pooled embeddings, at about 0, 11, 45, 101 and 149
// degrees. In the reconstruction sample 2 drifts to 84 degrees: it becomes
// the nearest neighbour of sample 3 (instead of 4) and its own is 3 (instead
// of 1); samples 0, 1 and 4 keep theirs.
func ExampleNNAgreement() {
	orig := [][]float64{{1, 0}, {1, 0.2}, {1, 1}, {-0.2, 1}, {-1, 0.6}}
	recon := [][]float64{{1, 0}, {1, 0.2}, {0.1, 1}, {-0.2, 1}, {-1, 0.6}}
	top1, top5 := bench.NNAgreement(orig, recon)
	fmt.Printf("top1 %.2f, top5 %.2f\n", top1, top5)
	// Output: top1 0.60, top5 1.00
}

func ExampleRecommend() {
	row := func(codec string, target, ratio, cos float64) bench.Row {
		r := bench.Row{Codec: codec, TargetRatio: target, Ratio: ratio}
		r.Quality.CosMean = cos
		return r
	}
	rows := []bench.Row{
		row("int8", 0, 1.98, 0.99995),
		row("int4", 0, 3.54, 0.99308),
		row("ntc", 4, 4.00, 0.99876),
		row("ntc", 8, 8.00, 0.98093),
	}
	best, ok := bench.Recommend(rows, bench.Target{MinCos: 0.995})
	fmt.Println(best.Label(), ok)
	// Output: ntc@4x true
}
