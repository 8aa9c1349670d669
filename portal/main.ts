// Placeholder entry until the dashboard lands.
document.getElementById('app')!.textContent = 'ChittyAuth portal';
