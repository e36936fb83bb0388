// SPDX-License-Identifier: Apache-2.0

// cdi-inject applies CDI devices to an OCI bundle's config.json with the CDI project's own library,
// as containerd and CRI-O do, so that plain runc can run a container "from the CDI spec" on a host
// that has no CDI-aware runtime (tests/gpu/cdi-runc):
//
//	cdi-inject -spec-dir DIR -config BUNDLE/config.json QUALIFIED-NAME...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

func main() {
	specDir := flag.String("spec-dir", "/var/run/cdi", "CDI spec directory")
	config := flag.String("config", "config.json", "the bundle's OCI spec, edited in place")
	flag.Parse()
	if err := inject(*specDir, *config, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "cdi-inject: %v\n", err)
		os.Exit(1)
	}
}

func inject(specDir, config string, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no CDI device names given")
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(specDir), cdi.WithAutoRefresh(false))
	if err != nil {
		return err
	}
	if errs := cache.GetErrors(); len(errs) > 0 {
		return fmt.Errorf("spec errors: %v", errs)
	}
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var spec oci.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	if unresolved, err := cache.InjectDevices(&spec, names...); err != nil {
		return fmt.Errorf("inject %v (unresolved %v): %w", names, unresolved, err)
	}
	out, err := json.MarshalIndent(&spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(config, out, 0o644)
}
