// How the live board writes a KPI value (loaded before board.js): the rules of
// appraisal.report.kpi_value, which writes the printed sheets, applied per unit as
// GET /kpis/registry describes them ({"style": "percent", "places": 1}, ...). tests/test_board.py
// runs this file against kpi_value. Nothing here touches the page.
"use strict";

const BoardFormat = (() => {
  // toFixed rounds the exact binary value half away from zero, as
  // Decimal(value).quantize(..., ROUND_HALF_UP) does.
  function format(spec, value, none) {
    if (value === null || value === undefined || value === "") return none;
    const x = Number(value);
    if (spec.style === "percent") return percent(x, spec.places);
    if (spec.style === "duration") return duration(x);
    const shown = x.toFixed(spec.places);
    return spec.trim ? shown.replace(/\.0$/, "") : shown;
  }

  // The ratio is rounded to places + 2 decimals and its decimal point moved in the text:
  // multiplying by 100 in floating point could move a value across a rounding boundary.
  function percent(x, places) {
    const [whole, frac] = Math.abs(x).toFixed(places + 2).split(".");
    const digits = (whole + frac.slice(0, 2)).replace(/^0+(?=\d)/, "");
    let shown = frac.length > 2 ? `${digits}.${frac.slice(2)}` : digits;
    shown = shown.replace(/\.0$/, "");
    return `${x < 0 && /[1-9]/.test(shown) ? "-" : ""}${shown} %`;
  }

  // Seconds to the minute, half up: 6720 -> 1h52m, 2700 -> 45m; under a minute 20s.
  function duration(seconds) {
    if (seconds < 60) return `${seconds.toFixed(0)}s`;
    const minutes = Number((seconds / 60).toFixed(0));
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return hours ? `${hours}h${String(rest).padStart(2, "0")}m` : `${rest}m`;
  }

  return Object.freeze({ format });
})();
