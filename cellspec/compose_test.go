package cellspec

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

func TestScratch(t *testing.T) {
	for _, f := range []string{"shop/docker-compose.yml", "build-args/compose.yaml", "healthchecks/compose.yaml", "profiles/compose.yaml", "extends/compose.yaml", "envfile/compose.yaml", "storefront/compose.yaml", "accounts/compose.yaml", "deploy/compose.yaml", "depends/compose.yaml", "ports/compose.yaml"} {
		files := []string{"../testdata/compose/" + f}
		if f == "storefront/compose.yaml" {
			files = append(files, "../testdata/compose/accounts/compose.yaml")
		}
		p, err := Load(Options{Files: files, Env: MapEnv(map[string]string{})})
		fmt.Println("=====", f, err)
		if p != nil {
			for _, w := range p.Warnings {
				fmt.Println("W", w)
			}
			if os.Getenv("SHOWCELL") != "" {
				b, _ := json.MarshalIndent(p.Cells, "", "  ")
				fmt.Println(string(b))
			}
			out, ws, err := ConvertCompose(files[0], MapEnv(map[string]string{}))
			_ = ws
			fmt.Println(string(out), err)
		}
	}
}
