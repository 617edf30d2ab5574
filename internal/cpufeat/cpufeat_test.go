package cpufeat

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	for s, want := range map[string]Level{"purego": Generic, "generic": Generic, "AVX2": AVX2, " avx512 ": AVX512} {
		if l, err := ParseLevel(s); err != nil || l != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, l, err, want)
		}
	}
	if _, err := ParseLevel("sse4"); err == nil {
		t.Error("ParseLevel accepted sse4")
	}
	for _, l := range []Level{Generic, AVX2, AVX512} {
		if back, err := ParseLevel(l.String()); err != nil || back != l {
			t.Errorf("%v does not parse back: %v, %v", l, back, err)
		}
	}
}

// TestSetLevel checks that a level never exceeds the CPU's and that the
// features of a lower level are hidden.
func TestSetLevel(t *testing.T) {
	old := Active()
	defer SetLevel(old)
	for _, l := range []Level{Generic, AVX2, AVX512} {
		SetLevel(l)
		if Active() != min(l, Detected()) {
			t.Fatalf("SetLevel(%v): active %v, detected %v", l, Active(), Detected())
		}
		f := X86
		if Active() < AVX512 && (f.HasAVX512F || f.HasAVX512BW || f.HasAVX512VL || f.HasAVX512DQ || f.HasAVX512VNNI || f.HasAVX512VBMI2) {
			t.Fatalf("level %v shows AVX-512 features: %+v", Active(), f)
		}
		if Active() < AVX2 && f != (Features{}) {
			t.Fatalf("level %v shows features: %+v", Active(), f)
		}
		if Active() >= AVX2 && !(f.HasAVX2 && f.HasFMA && f.HasF16C && f.HasBMI2) {
			t.Fatalf("level %v lacks its features: %+v", Active(), f)
		}
		if Active() == AVX512 && !(f.HasAVX512F && f.HasAVX512BW && f.HasAVX512VL && f.HasAVX512DQ) {
			t.Fatalf("level %v lacks its features: %+v", Active(), f)
		}
	}
	if got := Levels(); len(got) != int(Detected())+1 || got[len(got)-1] != Detected() {
		t.Fatalf("Levels() = %v with %v detected", got, Detected())
	}
}

// TestEnv runs the test binary again with NTC_CPU set and checks the level
// it starts at.
func TestEnv(t *testing.T) {
	if s := os.Getenv("NTC_CPU_TEST_WANT"); s != "" {
		want, err := ParseLevel(s)
		if err != nil {
			t.Fatal(err)
		}
		if Active() != min(want, Detected()) {
			t.Fatalf("%s=%s: active %v, detected %v", EnvVar, os.Getenv(EnvVar), Active(), Detected())
		}
		return
	}
	for _, c := range []struct{ env, want string }{
		{"purego", "purego"}, {"avx2", "avx2"}, {"avx512", "avx512"}, {"bogus", Detected().String()},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnv$")
		cmd.Env = append(os.Environ(), EnvVar+"="+c.env, "NTC_CPU_TEST_WANT="+c.want)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s=%s: %v\n%s", EnvVar, c.env, err, out)
		}
		if c.env == "bogus" && !strings.Contains(string(out), "ignoring NTC_CPU") {
			t.Fatalf("%s=bogus gave no warning:\n%s", EnvVar, out)
		}
	}
}
