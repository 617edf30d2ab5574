//go:build (386 || amd64) && !purego

package cpufeat

import "golang.org/x/sys/cpu"

func detect() Features {
	x := &cpu.X86
	return Features{
		HasAVX2: x.HasAVX2, HasFMA: x.HasFMA, HasF16C: x.HasAVX && x.HasF16C, HasBMI2: x.HasBMI2,
		HasAVX512F: x.HasAVX512F, HasAVX512BW: x.HasAVX512BW, HasAVX512VL: x.HasAVX512VL, HasAVX512DQ: x.HasAVX512DQ,
		HasAVX512VNNI: x.HasAVX512VNNI, HasAVX512VBMI2: x.HasAVX512VBMI2,
	}
}
