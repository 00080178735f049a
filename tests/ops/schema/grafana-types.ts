// The shape a redmap dashboard must have, built from Grafana's own schema
// package (@grafana/schema: the dashboard model and each core panel plugin's
// options and field config, generated from Grafana's CUE schemas).
// check.mjs adds `PanelKinds` (one entry per panel plugin the package
// describes) in panel-kinds.ts next to this file.
import type * as S from "@grafana/schema";
import type { PanelKinds } from "./panel-kinds";

// JSON spelling of a schema type: string enums become the union of their
// values ("bottom" for LegendPlacement.Bottom), everything else is kept, so
// misspelt keys (excess property checks) and values both fail to compile.
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Json<U>[]
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

// A query of Grafana's Prometheus data source (its PromQuery model; not part
// of @grafana/schema, which describes core panels, not data source plugins).
export interface PromTarget {
  refId: string;
  expr: string;
  datasource?: Json<S.DataSourceRef>;
  editorMode?: "code" | "builder";
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: "time_series" | "table" | "heatmap";
  interval?: string;
  intervalFactor?: number;
  exemplar?: boolean;
  hide?: boolean;
}

type FieldConfigOf<C> = Omit<Json<S.FieldConfigSource>, "defaults"> & {
  defaults: Omit<Json<S.FieldConfig>, "custom"> & { custom?: Json<C> };
};

export type PanelOf<T extends string, O, C> = Omit<
  Json<S.Panel>,
  "type" | "options" | "fieldConfig" | "targets"
> & {
  type: T;
  options: Json<O>;
  fieldConfig?: FieldConfigOf<C>;
  targets?: PromTarget[];
};

export type Panel = { [K in keyof PanelKinds]: PanelOf<K & string, PanelKinds[K][0], PanelKinds[K][1]> }[keyof PanelKinds];

export type RowPanel = Omit<Json<S.RowPanel>, "panels"> & { panels: Panel[] };

export type Dashboard = Omit<Json<S.Dashboard>, "panels"> & {
  uid: string;
  title: string;
  panels: Array<Panel | RowPanel>;
};
