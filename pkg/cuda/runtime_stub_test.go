//go:build !cuda

package cuda

import (
	"errors"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStub(t *testing.T) {
	if Built() {
		t.Fatal("Built() = true without the cuda tag")
	}
	d, err := Open(0)
	if d != nil || !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Open(0) = %v, %v; want nil, ErrNotBuilt", d, err)
	}
	var f *Function
	if err := f.Launch(Dim3{X: 1}, Dim3{X: 1}, 0, nil, DevPtr(0), 1); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Launch = %v; want ErrNotBuilt", err)
	}
}

// TestStubMatchesCUDA checks that the exported API of the files built
// without the cuda tag is the same as that of the files built with it, so
// that code against the package compiles both ways.
func TestStubMatchesCUDA(t *testing.T) {
	withTag, withoutTag := exportedAPI(t)
	if len(withTag) == 0 {
		t.Fatal("found no exported API in the cuda files")
	}
	for _, sig := range withTag {
		if !slices.Contains(withoutTag, sig) {
			t.Errorf("in the cuda build only: %s", sig)
		}
	}
	for _, sig := range withoutTag {
		if !slices.Contains(withTag, sig) {
			t.Errorf("in the build without cuda only: %s", sig)
		}
	}
}

// exportedAPI returns the exported declarations of the package's non-test
// files that only the cuda build has and those that only the build
// without it has, one string each.
func exportedAPI(t *testing.T) (withTag, withoutTag []string) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		in, out := buildsWith(t, f)
		if in == out { // in both builds, or in neither
			continue
		}
		api := declarations(f)
		if in {
			withTag = append(withTag, api...)
		} else {
			withoutTag = append(withoutTag, api...)
		}
	}
	return withTag, withoutTag
}

// buildsWith reports whether f is in the build with the cuda tag and
// whether it is in the build without it.
func buildsWith(t *testing.T, f *ast.File) (with, without bool) {
	for _, group := range f.Comments {
		if group.Pos() > f.Package {
			break
		}
		for _, c := range group.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				t.Fatal(err)
			}
			// Every other tag (the OS, the architecture) holds.
			with = expr.Eval(func(string) bool { return true })
			without = expr.Eval(func(tag string) bool { return tag != "cuda" })
			return with, without
		}
	}
	return true, true
}

// declarations returns f's exported top-level names and methods, with the
// types of functions' parameters and results.
func declarations(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if !decl.Name.IsExported() {
				continue
			}
			sig := "func "
			if decl.Recv != nil {
				recv := decl.Recv.List[0].Type
				base := recv
				if star, ok := base.(*ast.StarExpr); ok {
					base = star.X
				}
				if id, ok := base.(*ast.Ident); !ok || !id.IsExported() {
					continue // a method of an unexported type
				}
				sig += "(" + types.ExprString(recv) + ") "
			}
			sig += decl.Name.Name + "(" + fieldTypes(decl.Type.Params) + ") (" + fieldTypes(decl.Type.Results) + ")"
			out = append(out, sig)
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					if spec.Name.IsExported() {
						out = append(out, "type "+spec.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						if n.IsExported() {
							out = append(out, decl.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

func fieldTypes(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	var list []string
	for _, field := range fl.List {
		for range max(len(field.Names), 1) {
			list = append(list, types.ExprString(field.Type))
		}
	}
	return strings.Join(list, ", ")
}
