package gemsim

import (
	"fmt"
	"strings"
)

// DemoProjects returns the pool the command starts with when it is given no keys:
// three free-tier projects "sim-project-1".."sim-project-3" with two keys each, named
// "AIzaSySimDemoKey-p<project>-k<key>". The keys are fake and safe to print.
func DemoProjects() []ProjectConfig {
	projects := make([]ProjectConfig, 0, 3)
	for p := 1; p <= 3; p++ {
		pc := ProjectConfig{ID: fmt.Sprintf("sim-project-%d", p), Tier: TierFree}
		for k := 1; k <= 2; k++ {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSySimDemoKey-p%d-k%d", p, k))
		}
		projects = append(projects, pc)
	}
	return projects
}

// ParseKeys reads a key list such as the GCA_SIM_KEYS environment variable:
// comma-separated entries, each "project:key" or a bare "key". Keys naming the same
// project share it; a bare key becomes its own free-tier project "solo-<key>", as an
// ungrouped key is in the gateway. Projects keep the order of first mention.
func ParseKeys(list string) ([]ProjectConfig, error) {
	var projects []ProjectConfig
	index := make(map[string]int)
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		project, key, grouped := strings.Cut(entry, ":")
		if !grouped {
			key, project = project, "solo-"+project
		}
		project, key = strings.TrimSpace(project), strings.TrimSpace(key)
		if project == "" || key == "" {
			return nil, fmt.Errorf("key list entry %d %q: want project:key or key", i+1, entry)
		}
		j, ok := index[project]
		if !ok {
			j = len(projects)
			index[project] = j
			projects = append(projects, ProjectConfig{ID: project, Tier: TierFree})
		}
		projects[j].Keys = append(projects[j].Keys, key)
	}
	return projects, nil
}
