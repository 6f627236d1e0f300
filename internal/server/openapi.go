package server

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// openapi.json is written by hand; TestOpenAPIMatchesRoutes keeps its paths and methods equal
// to the routes the server registers.
//
//go:embed openapi.json
var openAPISource []byte

// openAPIDocument returns the document with info.version set to the binary's version.
func openAPIDocument(version string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPISource, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	if info, ok := doc["info"].(map[string]any); ok && version != "" {
		info["version"] = version
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
