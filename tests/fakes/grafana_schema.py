"""A JSON Schema (draft-07) for Grafana dashboards, derived from Grafana's published schema.

Derived by hand from Grafana's dashboard kind (``kinds/dashboard/dashboard_kind.cue``, schema
v0 as of schemaVersion 39) and the JSON Schemas that grafana-foundation-sdk generates from it
and from the panel plugins (``timeseries``, ``stat``, ``gauge``, ``bargauge``, ``text``:
``Options`` and ``FieldConfig``). Closed where Grafana's schema is closed, so that a legacy key
(``rows``, ``style``, ``span``, ``cacheTimeout``...) fails; open where the CUE has ``...``
(annotation queries, whose datasource-specific fields are spread into the object, and query
targets). Two deliberate deviations from the generated JSON Schemas, both following the CUE:
a threshold step's ``value`` may be null (Grafana's serialisation of -Infinity), and an override
property's ``value`` may be any JSON value.

Used by the dashboard tests and by the fake Grafana server, which rejects an invalid dashboard
with 400 like a schema-validating Grafana would.
"""

from __future__ import annotations

from typing import Any

STR: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}
NUM: dict[str, Any] = {"type": "number"}
INT: dict[str, Any] = {"type": "integer"}
STRS: dict[str, Any] = {"type": "array", "items": STR}
ANY_OBJ: dict[str, Any] = {"type": "object"}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}


def closed(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


def words(text: str) -> list[str]:
    return text.split()


def enum(*values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


REDUCE = closed(["calcs"], values=BOOL, limit=NUM, calcs=STRS, fields=STR)
VIZ_TEXT = closed(titleSize=NUM, valueSize=NUM, percentSize=NUM)
ORIENTATION = enum("auto", "vertical", "horizontal")

# Options and custom field config of the panel plugins the dashboards use.
PLUGINS: dict[str, dict[str, Any]] = {
    "timeseries": {
        "options": closed(
            ["legend", "tooltip"],
            timezone=STRS,
            legend=closed(
                ["displayMode", "placement", "showLegend", "calcs"],
                displayMode=enum("list", "table", "hidden"),
                placement=enum("bottom", "right"),
                showLegend=BOOL,
                asTable=BOOL,
                isVisible=BOOL,
                sortBy=STR,
                sortDesc=BOOL,
                width=NUM,
                calcs=STRS,
            ),
            tooltip=closed(
                ["mode", "sort"],
                mode=enum("single", "multi", "none"),
                sort=enum("asc", "desc", "none"),
                maxWidth=NUM,
                maxHeight=NUM,
            ),
        ),
        "custom": closed(
            drawStyle=enum("line", "bars", "points"),
            gradientMode=enum("none", "opacity", "hue", "scheme"),
            thresholdsStyle=closed(
                ["mode"], mode=enum("off", "line", "dashed", "area", "line+area", "dashed+area", "series")
            ),
            lineColor=STR,
            lineWidth=NUM,
            lineInterpolation=enum("linear", "smooth", "stepBefore", "stepAfter"),
            lineStyle=closed(fill=enum("solid", "dash", "dot", "square"), dash={"type": "array", "items": NUM}),
            fillColor=STR,
            fillOpacity=NUM,
            showPoints=enum("auto", "never", "always"),
            pointSize=NUM,
            pointColor=STR,
            axisPlacement=enum("auto", "top", "right", "bottom", "left", "hidden"),
            axisColorMode=enum("text", "series"),
            axisLabel=STR,
            axisWidth=NUM,
            axisSoftMin=NUM,
            axisSoftMax=NUM,
            axisGridShow=BOOL,
            scaleDistribution=closed(
                ["type"], type=enum("linear", "log", "ordinal", "symlog"), log=NUM, linearThreshold=NUM
            ),
            axisCenteredZero=BOOL,
            barAlignment=enum(-1, 0, 1),
            barWidthFactor=NUM,
            stacking=closed(mode=enum("none", "normal", "percent"), group=STR),
            hideFrom=closed(["tooltip", "legend", "viz"], tooltip=BOOL, legend=BOOL, viz=BOOL),
            transform=enum("constant", "negative-Y"),
            spanNulls={"oneOf": [BOOL, NUM]},
            fillBelowTo=STR,
            pointSymbol=STR,
            axisBorderShow=BOOL,
            barMaxWidth=NUM,
            insertNulls={"oneOf": [BOOL, INT]},
        ),
    },
    "stat": {
        "options": closed(
            words(
                "graphMode colorMode justifyMode textMode wideLayout showPercentChange reduceOptions "
                "percentChangeColorMode orientation"
            ),
            graphMode=enum("none", "line", "area"),
            colorMode=enum("value", "background", "background_solid", "none"),
            justifyMode=enum("auto", "center"),
            textMode=enum("auto", "value", "value_and_name", "name", "none"),
            wideLayout=BOOL,
            showPercentChange=BOOL,
            reduceOptions=REDUCE,
            text=VIZ_TEXT,
            percentChangeColorMode=enum("standard", "inverted", "same_as_value"),
            orientation=ORIENTATION,
        ),
    },
    "gauge": {
        "options": closed(
            words("showThresholdLabels showThresholdMarkers sizing minVizWidth reduceOptions minVizHeight orientation"),
            showThresholdLabels=BOOL,
            showThresholdMarkers=BOOL,
            sizing=enum("auto", "manual"),
            minVizWidth=INT,
            minVizHeight=INT,
            reduceOptions=REDUCE,
            text=VIZ_TEXT,
            orientation=ORIENTATION,
        ),
    },
    "bargauge": {
        "options": closed(
            words(
                "displayMode valueMode namePlacement showUnfilled sizing minVizWidth minVizHeight reduceOptions "
                "maxVizHeight orientation"
            ),
            displayMode=enum("basic", "lcd", "gradient"),
            valueMode=enum("color", "text", "hidden"),
            namePlacement=enum("auto", "top", "left"),
            showUnfilled=BOOL,
            sizing=enum("auto", "manual"),
            minVizWidth=INT,
            minVizHeight=INT,
            maxVizHeight=INT,
            reduceOptions=REDUCE,
            text=VIZ_TEXT,
            orientation=ORIENTATION,
        ),
    },
    "text": {
        "options": closed(
            ["mode", "content"],
            mode=enum("html", "markdown", "code"),
            content=STR,
            code=closed(
                ["language", "showLineNumbers", "showMiniMap"],
                language=STR,
                showLineNumbers=BOOL,
                showMiniMap=BOOL,
            ),
        ),
    },
}

DEFINITIONS: dict[str, Any] = {
    "DataSourceRef": closed(type=STR, uid=STR),
    "GridPos": closed(
        ["h", "w", "x", "y"],
        h={"type": "integer", "exclusiveMinimum": 0},
        w={"type": "integer", "exclusiveMinimum": 0, "maximum": 24},
        x={"type": "integer", "minimum": 0, "exclusiveMaximum": 24},
        y={"type": "integer", "minimum": 0},
        static=BOOL,
    ),
    "Threshold": closed(["value", "color"], value={"type": ["number", "null"]}, color=STR),
    "ThresholdsConfig": closed(
        ["mode", "steps"], mode=enum("absolute", "percentage"), steps={"type": "array", "items": ref("Threshold")}
    ),
    "FieldColor": closed(
        ["mode"],
        mode=enum(
            "thresholds",
            "palette-classic",
            "palette-classic-by-name",
            "continuous-GrYlRd",
            "continuous-RdYlGr",
            "continuous-BlYlRd",
            "continuous-YlRd",
            "continuous-BlPu",
            "continuous-YlBl",
            "continuous-blues",
            "continuous-reds",
            "continuous-greens",
            "continuous-purples",
            "fixed",
            "shades",
        ),
        fixedColor=STR,
        seriesBy=enum("min", "max", "last"),
    ),
    "FieldConfig": closed(
        displayName=STR,
        displayNameFromDS=STR,
        description=STR,
        path=STR,
        writeable=BOOL,
        filterable=BOOL,
        unit=STR,
        decimals=NUM,
        min=NUM,
        max=NUM,
        mappings={"type": "array", "items": ANY_OBJ},
        thresholds=ref("ThresholdsConfig"),
        color=ref("FieldColor"),
        links={"type": "array", "items": ANY_OBJ},
        noValue=STR,
        custom=ANY_OBJ,
    ),
    "MatcherConfig": closed(["id"], id=STR, options={}),
    "FieldConfigSource": closed(
        ["defaults", "overrides"],
        defaults=ref("FieldConfig"),
        overrides={
            "type": "array",
            "items": closed(
                ["matcher", "properties"],
                matcher=ref("MatcherConfig"),
                properties={"type": "array", "items": closed(["id"], id=STR, value={})},
            ),
        },
    ),
    "DashboardLink": closed(
        ["title", "type", "icon", "tooltip", "tags", "asDropdown", "targetBlank", "includeVars", "keepTime"],
        title=STR,
        type=enum("link", "dashboards"),
        icon=STR,
        tooltip=STR,
        url=STR,
        tags=STRS,
        asDropdown=BOOL,
        targetBlank=BOOL,
        includeVars=BOOL,
        keepTime=BOOL,
    ),
    "Target": {
        "type": "object",
        "required": ["refId"],
        "properties": {"refId": STR, "datasource": ref("DataSourceRef")},
    },
    "Panel": closed(
        ["type"],
        type={"type": "string", "minLength": 1},
        id=INT,
        pluginVersion=STR,
        tags=STRS,
        targets={"type": "array", "items": ref("Target")},
        title=STR,
        description=STR,
        transparent=BOOL,
        datasource=ref("DataSourceRef"),
        gridPos=ref("GridPos"),
        links={"type": "array", "items": ref("DashboardLink")},
        repeat=STR,
        repeatDirection=enum("h", "v"),
        maxPerRow=NUM,
        maxDataPoints=NUM,
        transformations={"type": "array", "items": closed(["id", "options"], id=STR, disabled=BOOL, options={})},
        interval=STR,
        timeFrom=STR,
        timeShift=STR,
        hideTimeOverride=BOOL,
        libraryPanel=closed(["name", "uid"], name=STR, uid=STR),
        options=ANY_OBJ,
        fieldConfig=ref("FieldConfigSource"),
    ),
    "RowPanel": closed(
        ["type", "collapsed", "id", "panels"],
        type={"const": "row"},
        collapsed=BOOL,
        title=STR,
        datasource=ref("DataSourceRef"),
        gridPos=ref("GridPos"),
        id=INT,
        panels={"type": "array", "items": ref("Panel")},
        repeat=STR,
    ),
    "VariableOption": closed(
        ["text", "value"],
        selected=BOOL,
        text={"anyOf": [STR, STRS]},
        value={"anyOf": [STR, STRS]},
    ),
    "VariableModel": closed(
        ["type", "name"],
        type=enum("query", "adhoc", "constant", "datasource", "interval", "textbox", "custom", "system"),
        name=STR,
        label=STR,
        hide=enum(0, 1, 2),
        skipUrlSync=BOOL,
        description=STR,
        query={"anyOf": [STR, ANY_OBJ]},
        datasource=ref("DataSourceRef"),
        current=ref("VariableOption"),
        multi=BOOL,
        options={"type": "array", "items": ref("VariableOption")},
        refresh=enum(0, 1, 2),
        sort=enum(0, 1, 2, 3, 4, 5, 6, 7, 8),
        includeAll=BOOL,
        allValue=STR,
        regex=STR,
    ),
    # Open in the CUE: datasources "spread their query into the base object".
    "AnnotationQuery": {
        "type": "object",
        "required": ["name", "datasource", "enable", "iconColor"],
        "properties": {
            "name": STR,
            "datasource": ref("DataSourceRef"),
            "enable": BOOL,
            "hide": BOOL,
            "iconColor": STR,
            "filter": closed(["ids"], exclude=BOOL, ids={"type": "array", "items": INT}),
            "target": ANY_OBJ,
            "type": STR,
            "builtIn": NUM,
        },
    },
}

# Each panel type's options (and timeseries' custom field config) validated by its plugin schema.
PANEL_BY_TYPE = [
    {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": {
            "properties": {
                "options": plugin["options"],
                "fieldConfig": {"properties": {"defaults": {"properties": {"custom": plugin.get("custom", closed())}}}},
            }
        },
    }
    for kind, plugin in PLUGINS.items()
]
DEFINITIONS["Panel"]["allOf"] = PANEL_BY_TYPE

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": DEFINITIONS,
    **closed(
        ["schemaVersion", "templating", "annotations"],
        id=INT,
        uid={"type": "string", "minLength": 1, "maxLength": 40},
        title=STR,
        description=STR,
        revision=INT,
        gnetId=STR,
        tags=STRS,
        timezone=STR,
        editable=BOOL,
        graphTooltip=enum(0, 1, 2),
        time=closed(["from", "to"], **{"from": STR, "to": STR}),
        timepicker=closed(
            hidden=BOOL, refresh_intervals=STRS, time_options=STRS, nowDelay=STR, collapse=BOOL, enable=BOOL
        ),
        fiscalYearStartMonth={"type": "integer", "minimum": 0, "exclusiveMaximum": 12},
        liveNow=BOOL,
        weekStart=STR,
        refresh={"anyOf": [STR, {"const": False}]},
        schemaVersion=INT,
        version=INT,
        panels={
            "type": "array",
            "items": {"if": {"properties": {"type": {"const": "row"}}}, "then": ref("RowPanel"), "else": ref("Panel")},
        },
        templating=closed(list={"type": "array", "items": ref("VariableModel")}),
        annotations=closed(list={"type": "array", "items": ref("AnnotationQuery")}),
        links={"type": "array", "items": ref("DashboardLink")},
        snapshot=ANY_OBJ,
    ),
}


def errors(dashboard: Any) -> list[str]:
    """Every schema violation of ``dashboard``, as ``path: message`` lines (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(SCHEMA)
    out = []
    for err in sorted(validator.iter_errors(dashboard), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{path}: {err.message[:300]}")
    return out
