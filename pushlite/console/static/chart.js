// Notifications per minute by outcome, last hour: the one part of the console that needs JavaScript.
(function () {
  "use strict";
  var holder = document.getElementById("chart");
  var source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  var colours = {delivered: "#00a32a", removed: "#646970", retried: "#dba617", failed: "#d63638", skipped: "#2271b1"};
  var names = Object.keys(data.series);
  var series = [{}].concat(names.map(function (name) {
    return {label: name, stroke: colours[name] || "#000", width: 2, points: {show: false}};
  }));
  var plotted = [data.times].concat(names.map(function (name) { return data.series[name]; }));
  function size() { return {width: Math.max(240, holder.clientWidth), height: 220}; }
  var options = Object.assign(size(), {
    series: series,
    scales: {y: {range: function (u, min, max) { return [0, Math.max(5, max)]; }}},
    axes: [{}, {size: 50}],
    legend: {live: true}
  });
  var plot = new uPlot(options, plotted, holder);
  window.addEventListener("resize", function () { plot.setSize(size()); });
})();
