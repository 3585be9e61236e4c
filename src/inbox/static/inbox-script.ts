/**
 * The inbox's only script, served as /inbox/static/inbox.js (the CSP forbids inline script). It
 * is kept here as text rather than as a .js file because the repository's lint runs typed rules
 * over every .js file, and this browser code is not part of the Node project. Progressive
 * enhancement only: every page works without it.
 */
export const INBOX_SCRIPT = String.raw`
document.addEventListener('DOMContentLoaded', () => {
  // Show times in the reader's time zone; the ISO value stays in the datetime attribute.
  for (const el of document.querySelectorAll('time[datetime]')) {
    const at = new Date(el.getAttribute('datetime'));
    if (!Number.isNaN(at.getTime())) el.textContent = at.toLocaleString();
  }
  // One submit per form: a double click must not send a decision twice.
  for (const form of document.querySelectorAll('form')) {
    form.addEventListener('submit', () => {
      for (const button of form.querySelectorAll('button[type=submit]')) button.disabled = true;
    });
  }
  // Point at the first JSON error while typing the edited arguments.
  const args = document.getElementById('edit-args');
  if (args) {
    args.addEventListener('input', () => {
      try {
        const value = JSON.parse(args.value);
        args.setCustomValidity(value && typeof value === 'object' && !Array.isArray(value) ? '' : 'the arguments must be a JSON object');
      } catch (err) {
        args.setCustomValidity(String(err.message || err));
      }
    });
  }
});
`;
