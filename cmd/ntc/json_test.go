package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// jsonOf runs the command, which must exit with code, and decodes its
// standard output as JSON.
func jsonOf(t *testing.T, code int, args ...string) map[string]any {
	t.Helper()
	got, out, errs := ntc(t, args...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); got != code || err != nil {
		t.Fatalf("%v: exit %d (want %d), %v\nstdout %s\nstderr %s", args, got, code, err, out, errs)
	}
	return v
}

// TestJSONEverywhere checks --json on every verb that writes or checks
// files (encode with its codec, verify, decode, fit), and that inspect
// describes a model file instead of calling it damaged.
func TestJSONEverywhere(t *testing.T) {
	dir, in := writeSample(t)
	x := filepath.Join(dir, "x.ntcb")
	if v := jsonOf(t, 0, "encode", in, "-o", x, "--codec", "int8", "--json"); v["codec"] != "int8" || v["samples"] == nil {
		t.Errorf("encode --json: %v", v)
	}
	bad := writeEdited(t, x, dir, "bad.ntcb", func(b []byte) { b[len(b)/2] ^= 1 })
	v := jsonOf(t, exitCorrupt, "verify", x, bad, "--json")
	files, _ := v["files"].([]any)
	if v["ok"] != false || len(files) != 2 {
		t.Fatalf("verify --json: %v", v)
	}
	good, broken := files[0].(map[string]any), files[1].(map[string]any)
	if good["ok"] != true || good["kind"] != "data" || good["samples"] == nil || broken["ok"] != false ||
		broken["exit_code"] != float64(exitCorrupt) || !strings.Contains(broken["error"].(string), "bad.ntcb") {
		t.Errorf("verify --json files: %v", files)
	}
	if v := jsonOf(t, 0, "verify", x, "--json"); v["ok"] != true {
		t.Errorf("verify --json of a good file: %v", v)
	}
	if v := jsonOf(t, 0, "decode", x, "-o", filepath.Join(dir, "y.npy"), "--json"); v["samples"] == nil || v["dtype"] != "float16" || v["output"] == nil {
		t.Errorf("decode --json: %v", v)
	}
	m := filepath.Join(dir, "m.ntcm")
	if v := jsonOf(t, 0, "fit", in, "-o", m, "--json", "--fit-samples", "4"); v["codec"] != "ntc" || v["model_bytes"] == nil {
		t.Errorf("fit --json: %v", v)
	}
	if v := jsonOf(t, 0, "inspect", m, "--json"); v["kind"] != "model" || v["codec"] != "ntc" || v["layout"] == nil || v["model_version"] != 9.0 {
		t.Errorf("inspect --json of a model: %v", v)
	}
	if v := jsonOf(t, 0, "inspect", x, "--json"); v["kind"] != "data" {
		t.Errorf("inspect --json of a data file: %v", v)
	}
	code, out, errs := ntc(t, "inspect", m)
	if code != 0 || !strings.Contains(out, "model file") || !strings.Contains(out, "ntc (model version 9)") {
		t.Errorf("inspect of a model: exit %d\n%s%s", code, out, errs)
	}
}

// TestInspectModelVersion checks that inspect names the model version of
// the learned codec's files, old and new, and lists the codec's
// parameters one to a line (the task metric's record as pairs).
func TestInspectModelVersion(t *testing.T) {
	golden := filepath.Join("..", "..", "testdata", "golden")
	for _, c := range []struct {
		file    string
		version float64
	}{{"compat/ntc_model_v5.ntcb", 5}, {"compat/ntc_model_v6.ntcb", 6}, {"compat/ntc_model_v7.ntcb", 7},
		{"compat/ntc_model_v8.ntcb", 8}, {"compat/ntc_model_v8_classsteps.ntcb", 8},
		{"ntc.ntcb", 9}, {"classsteps/ntc_classsteps.ntcb", 9}} {
		f := filepath.Join(golden, c.file)
		if v := jsonOf(t, 0, "inspect", f, "--json"); v["model_version"] != c.version {
			t.Errorf("inspect --json %s: model_version %v, want %v", c.file, v["model_version"], c.version)
		}
		code, out, errs := ntc(t, "inspect", f)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("ntc (model version %d)", int(c.version))) {
			t.Errorf("inspect %s: exit %d\n%s%s", c.file, code, out, errs)
		}
		task := strings.Contains(c.file, "_v7") || strings.Contains(c.file, "classsteps")
		if task && (!strings.Contains(out, "\n              task_metric=blend=") || strings.Contains(out, "map[")) {
			t.Errorf("inspect %s: task metric not listed as pairs on its own line:\n%s", c.file, out)
		}
	}
	// Codecs without a model have no version.
	if v := jsonOf(t, 0, "inspect", filepath.Join(golden, "int8.ntcb"), "--json"); v["model_version"] != nil {
		t.Errorf("inspect --json int8.ntcb: model_version %v", v["model_version"])
	}
}
