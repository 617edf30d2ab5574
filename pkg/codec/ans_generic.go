//go:build !amd64 || purego

package codec

// lanesVec runs whole groups of eight or sixteen symbols through the
// lanes with vector instructions where the CPU has them; here it does none.
func (d *sliceDecoder) lanesVec(tabs *ansDecTables, etab []uint16, tq []uint8) int { return 0 }

// rawVec dequantizes whole groups of eight symbols with vector
// instructions where the CPU has them; here it does none.
func (d *sliceDecoder) rawVec(recon *[ansReconSize]float32, rec []uint16, off []uint32, tq []uint8, coef []float32, step float32) int {
	return 0
}

// setGatherMode does nothing: there are no vector lanes in this build.
func setGatherMode(m int) int { return m }

// gatherModes returns the one mode of a build without vector lanes.
func gatherModes() []int { return []int{0} }

// TableReads says how the vector entropy decoder reads its tables: "" in
// a build without it.
func TableReads() string { return "" }
