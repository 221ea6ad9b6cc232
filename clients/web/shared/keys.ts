// Names under which the web clients keep things in the browser (one origin serves them all).
// Kept free of imports so that any bundle (the GraphiQL page too) can read them cheaply.

/** The office console's session (token, expiry, viewer) in localStorage. */
export const CONSOLE_SESSION_KEY = 'onewindow.console.session'

/** The field app's session in localStorage. */
export const FIELD_SESSION_KEY = 'onewindow.field.session'
