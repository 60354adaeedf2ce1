// Loaded by index.html: a second file of --static fetched on the page's
// connection. The test reads its resource timing (nextHopProtocol) and writes
// what it does into #log.
window.pageScript = true;
window.log = (line) => {
  const el = document.getElementById('log');
  if (el) el.textContent += `${line}\n`;
};
