// Package cpufeat decides which vector code paths ntc runs.
//
// Every package with assembly kernels asks this one, so one switch selects
// the path everywhere. The path is the best level the CPU supports, unless
// the environment variable NTC_CPU names a lower one:
//
//	NTC_CPU=purego   the portable Go loops only
//	NTC_CPU=avx2     AVX2, FMA, F16C and BMI2 kernels, no AVX-512
//	NTC_CPU=avx512   AVX-512 kernels (F, BW, VL, DQ) as well
//
// A level above what the CPU supports falls back to the CPU's own; that is
// how the AVX2 kernels are tested and benchmarked on AVX-512 machines.
// Building with -tags purego removes the assembly: the level is then
// always Generic. An unknown NTC_CPU value is reported on standard error
// once and otherwise ignored.
package cpufeat

import (
	"fmt"
	"os"
	"strings"
)

// EnvVar is the environment variable that forces a lower vector level.
const EnvVar = "NTC_CPU"

// Level is a set of vector extensions that code paths are written for.
// Each level includes the ones below it.
type Level uint8

// The levels, lowest first.
const (
	Generic Level = iota // portable Go, no assembly
	AVX2                 // AVX2, FMA, F16C and BMI2
	AVX512               // AVX2 plus AVX-512 F, BW, VL and DQ
)

var levelNames = [...]string{Generic: "purego", AVX2: "avx2", AVX512: "avx512"}

// String returns the level's NTC_CPU name.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", l)
}

// ParseLevel parses an NTC_CPU value (case-insensitive; "generic" is an
// alias of "purego").
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "purego", "generic":
		return Generic, nil
	case "avx2":
		return AVX2, nil
	case "avx512":
		return AVX512, nil
	}
	return Generic, fmt.Errorf("%s=%q: want purego, avx2 or avx512", EnvVar, s)
}

// Features are the CPU extensions the kernels may use. X86 holds those of
// the active level: an extension above it reads false even when the CPU
// has it.
type Features struct {
	HasAVX2, HasFMA, HasF16C, HasBMI2                 bool
	HasAVX512F, HasAVX512BW, HasAVX512VL, HasAVX512DQ bool
	HasAVX512VNNI, HasAVX512VBMI2                     bool
}

var (
	cpuFeatures Features // what the CPU has (zero with purego or off x86)
	detected    Level
	active      Level

	// X86 holds the extensions of the active level. Kernels read it at
	// call time; only SetLevel changes it.
	X86 Features
)

func init() {
	cpuFeatures = detect()
	f := cpuFeatures
	switch {
	case f.HasAVX2 && f.HasFMA && f.HasF16C && f.HasBMI2 &&
		f.HasAVX512F && f.HasAVX512BW && f.HasAVX512VL && f.HasAVX512DQ:
		detected = AVX512
	case f.HasAVX2 && f.HasFMA && f.HasF16C && f.HasBMI2:
		detected = AVX2
	}
	want := detected
	if s, ok := os.LookupEnv(EnvVar); ok && s != "" {
		l, err := ParseLevel(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ntc: ignoring %v\n", err)
		} else {
			want = l
		}
	}
	SetLevel(want)
}

// Detected returns the best level the CPU supports (Generic in a purego
// build or on other architectures).
func Detected() Level { return detected }

// Active returns the level the kernels run at.
func Active() Level { return active }

// SetLevel makes the kernels run at level l, or at the detected level if
// that is lower, and returns the level that was active before. It is for
// tests and benchmarks that compare paths within one process; it must not
// be called while kernels run on other goroutines.
func SetLevel(l Level) Level {
	old := active
	active = min(l, detected)
	f := cpuFeatures
	if active < AVX512 {
		f.HasAVX512F, f.HasAVX512BW, f.HasAVX512VL, f.HasAVX512DQ = false, false, false, false
		f.HasAVX512VNNI, f.HasAVX512VBMI2 = false, false
	}
	if active < AVX2 {
		f = Features{}
	}
	X86 = f
	return old
}

// Levels returns the levels this machine can run, lowest first: the ones a
// test should try.
func Levels() []Level {
	var ls []Level
	for l := Generic; l <= detected; l++ {
		ls = append(ls, l)
	}
	return ls
}

// Describe says which level runs and why, for version and bench output:
// "avx512", or "avx2 (NTC_CPU=avx2; the CPU has avx512)".
func Describe() string {
	if active == detected {
		return active.String()
	}
	why := "forced"
	if v := os.Getenv(EnvVar); v != "" {
		why = EnvVar + "=" + v
	}
	return fmt.Sprintf("%s (%s; the CPU has %s)", active, why, detected)
}
