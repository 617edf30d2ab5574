//go:build !amd64 || purego

package f16

func encodeVec(dst []uint16, src []float32) int { return 0 }
func decodeVec(dst []float32, src []uint16) int { return 0 }
