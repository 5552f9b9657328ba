<?php
/**
 * Closte API requests go to the sidecar's Closte door with the token.
 *
 * @package Closte_Operator
 */

final class RouterTest extends Closte_Operator_Test_Case {

	const CLOSTE = 'https://app.closte.com/api/client/';
	const REAL   = 'real-closte-key-0a9d';

	private Closte_Operator_Router $router;

	protected function setUp(): void {
		parent::setUp();
		$this->router = new Closte_Operator_Router( $this->sidecar, $this->queue );
	}

	/**
	 * What Ultimate Multisite's Closte integration passes to wp_remote_post.
	 */
	private function post( string $endpoint, array $body ) {
		return $this->router->filter(
			false,
			array(
				'method'     => 'POST',
				'timeout'    => 45,
				'user-agent' => 'WP-Ultimo-Closte-Integration/2.0',
				'body'       => $body,
			),
			self::CLOSTE . $endpoint
		);
	}

	private static function form( ?string $body ): array {
		parse_str( (string) $body, $fields );
		return $fields;
	}

	public function test_only_closte_client_api_urls_are_routed(): void {
		$this->assertSame( 'adddomainalias', Closte_Operator_Router::endpoint( self::CLOSTE . 'adddomainalias' ) );
		$this->assertSame( 'ssl/install', Closte_Operator_Router::endpoint( 'https://APP.closte.com/api/client/ssl/install' ) );
		$this->assertSame( 'getdomains', Closte_Operator_Router::endpoint( self::CLOSTE . 'getdomains?apikey=x' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://app.closte.com/api/other' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://closte.com/api/client/adddomainalias' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'https://app.closte.com.evil.test/api/client/adddomainalias' ) );
		$this->assertNull( Closte_Operator_Router::endpoint( 'not a url' ) );

		$this->assertFalse( $this->router->filter( false, array(), 'https://wordpress.org/' ) );
		$earlier = array( 'response' => array( 'code' => 418 ) );
		$this->assertSame( $earlier, $this->router->filter( $earlier, array(), self::CLOSTE . 'getdomains' ) );
		$this->assertSame( array(), $this->transport->requests );
	}

	public function test_an_add_reaches_the_closte_door_with_the_token_instead_of_the_key(): void {
		$this->transport->always( 200, '{"success":true}' );
		$response = $this->post(
			'adddomainalias',
			array(
				'apikey'   => self::REAL,
				'domain'   => 'shop.example.com',
				'wildcard' => 0,
			)
		);

		$this->assertSame( 200, $response['response']['code'] );
		$this->assertSame( '{"success":true}', $response['body'] );
		$this->assertCount( 1, $this->transport->requests );
		$request = $this->transport->requests[0];
		$this->assertSame( 'POST', $request['method'] );
		$this->assertSame( 'http://sidecar.test:8087/api/client/adddomainalias', $request['url'] );
		$this->assertSame( 'application/x-www-form-urlencoded', $request['headers']['Content-Type'] );
		$this->assertSame(
			array(
				'apikey'   => self::TOKEN,
				'domain'   => 'shop.example.com',
				'wildcard' => '0',
			),
			self::form( $request['body'] )
		);
		$this->assertSame( 2.0, $request['timeout'], 'never the caller\'s 45 s' );
		$this->assertStringNotContainsString( self::REAL, serialize( $request ) );
		$this->assertSame( array(), $this->queue->entries() );
	}

	public function test_the_key_is_replaced_in_a_query_string_and_in_a_string_body(): void {
		$this->transport->always( 200, '{"success":true,"domains":[]}' );
		$this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::REAL );
		$this->router->filter(
			false,
			array(
				'method' => 'POST',
				'body'   => 'apikey=' . self::REAL . '&domain=%2A.example.com&wildcard=1',
			),
			self::CLOSTE . 'deletedomainalias'
		);
		$this->router->filter(
			false,
			array(
				'method' => 'GET',
				'body'   => array( 'apikey' => self::REAL ),
			),
			self::CLOSTE . 'getdomains'
		);

		list( $get, $delete, $get_array ) = $this->transport->requests;
		$this->assertSame( 'http://sidecar.test:8087/api/client/getdomains?apikey=' . self::TOKEN, $get['url'] );
		$this->assertNull( $get['body'] );
		$this->assertSame(
			array(
				'apikey'   => self::TOKEN,
				'domain'   => '*.example.com',
				'wildcard' => '1',
			),
			self::form( $delete['body'] )
		);
		$this->assertSame( 'http://sidecar.test:8087/api/client/getdomains?apikey=' . self::TOKEN, $get_array['url'] );
		$this->assertStringNotContainsString( self::REAL, serialize( $this->transport->requests ) );
	}

	public function test_a_json_body_reaches_the_door_as_a_form(): void {
		$this->router->filter(
			false,
			array(
				'method'  => 'POST',
				'headers' => array( 'Content-Type' => 'application/json' ),
				'body'    => '{"apikey":"' . self::REAL . '","domain":"shop.example.com"}',
				'timeout' => 0,
			),
			self::CLOSTE . 'adddomainalias'
		);
		$request = $this->transport->requests[0];
		$this->assertSame( 'application/x-www-form-urlencoded', $request['headers']['Content-Type'] );
		$this->assertSame(
			array(
				'apikey' => self::TOKEN,
				'domain' => 'shop.example.com',
			),
			self::form( $request['body'] )
		);
		$this->assertSame( 2.0, $request['timeout'], 'a timeout of 0 (none) is not taken over' );
	}

	public function test_a_request_without_a_key_gets_the_token_where_closte_expects_it(): void {
		$this->post( 'adddomainalias', array() );
		$this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains' );
		$this->assertSame( array( 'apikey' => self::TOKEN ), self::form( $this->transport->requests[0]['body'] ) );
		$this->assertStringEndsWith( '/api/client/getdomains?apikey=' . self::TOKEN, $this->transport->requests[1]['url'] );
	}

	public function test_the_sidecar_answer_comes_back_as_it_is(): void {
		$rejected = '{"success":false,"error":"Invalid or empty domain: "}';
		$this->transport->always( 200, $rejected );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::REAL ) );
		$this->assertSame( $rejected, $response['body'], 'Ultimate Multisite\'s test connection compares it byte for byte' );

		$this->transport->always( 401, '{"success":false,"error":"invalid API key"}' );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::REAL ) );
		$this->assertSame( 401, $response['response']['code'] );
		$this->assertSame( 'Unauthorized', $response['response']['message'] );
	}

	public function test_an_unreachable_sidecar_gives_a_closte_shaped_503_and_queues_the_add(): void {
		$this->transport->always( 0 );
		$response = $this->post(
			'adddomainalias',
			array(
				'apikey'   => self::REAL,
				'domain'   => 'Shop.Example.com',
				'wildcard' => 0,
			)
		);

		$this->assertIsArray( $response, 'never a WP_Error' );
		$this->assertSame( 503, $response['response']['code'] );
		$body = json_decode( $response['body'], true );
		$this->assertFalse( $body['success'] );
		$this->assertStringContainsString( 'sidecar unreachable', $body['error'] );
		$this->assertStringContainsString( 'queued', $body['error'] );
		$this->assertSame( array( 'domain:shop.example.com' => array( 'put', 1, 0 ) ), $this->queued() );
		$this->assertNull( $this->queue->entries()['domain:shop.example.com']['site'] );
		$this->assertTrue( $this->queue->is_down() );
		$this->assertSame( array( $this->now ), $this->scheduled, 'a retry is scheduled for the next cron run' );
	}

	public function test_the_token_never_appears_in_an_answer_or_the_queue(): void {
		$this->transport->answer = fn( $request ) => Closte_Operator_Result::unreachable( 'Operation timed out for ' . $request['url'] );
		$response = $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains?apikey=' . self::REAL );
		$this->assertStringContainsString( 'timed out for http://sidecar.test:8087/api/client/getdomains?apikey=[redacted]', $response['body'] );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->post( 'adddomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->queue->drain();
		$this->assertStringNotContainsString( self::TOKEN, serialize( array( $response, $this->store->values ) ) );
	}

	public function test_while_the_breaker_is_open_nothing_waits_on_the_sidecar(): void {
		$this->transport->always( 0 );
		$this->post( 'adddomainalias', array( 'domain' => 'a.example.com' ) );
		$this->assertCount( 1, $this->transport->requests );

		$response = $this->post( 'deletedomainalias', array( 'domain' => 'b.example.com' ) );
		$get      = $this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains' );
		$this->assertCount( 1, $this->transport->requests, 'no new request while the breaker is open' );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertSame( 503, $get['response']['code'] );
		$this->assertSame( array( 'put', 'delete' ), array_column( $this->queued(), 0 ) );

		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->transport->always( 200, '{"success":true}' );
		$this->post( 'adddomainalias', array( 'domain' => 'c.example.com' ) );
		$this->assertCount( 2, $this->transport->requests, 'tried again once the breaker closed' );
		$this->assertFalse( $this->queue->is_down() );
	}

	public function test_test_connection_and_reads_are_not_queued(): void {
		$this->transport->always( 0 );
		$response = $this->post( 'adddomainalias', array( 'apikey' => self::REAL ) );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertStringNotContainsString( 'queued', json_decode( $response['body'], true )['error'] );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->router->filter( false, array( 'method' => 'GET' ), self::CLOSTE . 'getdomains' );
		$this->post( 'ssl/install', array( 'domain' => 'shop.example.com' ) );
		$this->assertSame( array(), $this->queue->entries() );
	}

	public function test_a_sidecar_error_is_passed_on_and_the_write_queued(): void {
		$this->transport->always( 503, '{"success":false,"error":"Kubernetes API server unreachable"}' );
		$response = $this->post( 'deletedomainalias', array( 'domain' => 'old.example.com' ) );
		$this->assertSame( 503, $response['response']['code'] );
		$this->assertSame( '{"success":false,"error":"Kubernetes API server unreachable"}', $response['body'] );
		$this->assertSame( array( 'domain:old.example.com' => array( 'delete', 1, 0 ) ), $this->queued() );
		$this->assertFalse( $this->queue->is_down(), 'the sidecar itself answered' );
	}

	public function test_a_later_successful_write_cancels_the_queued_one(): void {
		$this->transport->always( 0 );
		$this->post( 'deletedomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->now += Closte_Operator_Queue::BREAKER_SECONDS;
		$this->transport->always( 200, '{"success":true}' );
		$this->post( 'adddomainalias', array( 'domain' => 'shop.example.com' ) );
		$this->assertSame( array(), $this->queue->entries(), 'the old delete must not undo the add' );
	}
}
