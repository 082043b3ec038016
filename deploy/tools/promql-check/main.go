// Command promql-check validates Prometheus files offline with Prometheus's own packages:
// rule files as Prometheus loads them (rulefmt: groups, PromQL, label and annotation
// templates), the scrape configuration (config.LoadFile), and the PromQL of every panel
// target of Grafana dashboards.
//
//	promql-check [-rules FILE]... [-config FILE]... [-dashboard FILE]...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var promql = parser.NewParser(parser.Options{})

func checkDashboard(path string) []error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	var errs []error
	exprs := 0
	for _, panel := range d.Panels {
		for _, target := range panel.Targets {
			exprs++
			if _, err := promql.ParseExpr(target.Expr); err != nil {
				errs = append(errs, fmt.Errorf("%s: panel %q: %w", path, panel.Title, err))
			}
		}
	}
	if exprs == 0 {
		errs = append(errs, fmt.Errorf("%s: no PromQL targets", path))
	}
	return errs
}

func main() {
	var rules, configs, dashboards list
	flag.Var(&rules, "rules", "rule file (repeatable)")
	flag.Var(&configs, "config", "prometheus.yml (repeatable)")
	flag.Var(&dashboards, "dashboard", "Grafana dashboard JSON (repeatable)")
	flag.Parse()
	var errs []error
	for _, path := range rules {
		_, es := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, promslog.NewNopLogger())
		errs = append(errs, es...)
	}
	for _, path := range configs {
		if _, err := config.LoadFile(path, false, promslog.NewNopLogger()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	for _, path := range dashboards {
		errs = append(errs, checkDashboard(path)...)
	}
	for _, err := range errs {
		fmt.Fprintf(os.Stderr, "promql-check: %v\n", err)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}
